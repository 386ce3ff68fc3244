// The safetensors format (huggingface/safetensors), for checkpoints and for weights exchanged with
// Python: an 8-byte little-endian header length N, N bytes of JSON header, then the data buffer. The
// header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (byte offsets into the
// data buffer) and may hold "__metadata__", a string->string map.
//
// Writing follows the Python library: tensors laid out contiguously in order of decreasing element
// size, then name (so every tensor is aligned to its element size), header padded with spaces to a
// multiple of 8 bytes. Reading is strict: anything the format does not allow is an error naming the
// tensor and the problem, never a crash, so a corrupt or hostile file cannot take down a worker.
// Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
#pragma once

#include <map>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psd3d {

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;  // contiguous CPU tensors owning their memory
  std::map<std::string, std::string> metadata;
};

// The file's bytes. Tensors may be on any device and non-contiguous (they are copied to CPU). Errors
// (INVALID_ARGUMENT): undefined tensor, unsupported dtype, empty or reserved ("__metadata__") name,
// names or metadata that are not valid UTF-8.
absl::StatusOr<std::string> SerializeSafetensors(const std::map<std::string, at::Tensor>& tensors,
                                                 const std::map<std::string, std::string>& metadata = {});

// Writes the file atomically (temporary + fsync + rename; see file_io.h), streaming tensor data without
// building the whole file in memory.
absl::Status WriteSafetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Parses a whole file held in memory. Errors: DATA_LOSS when the bytes end early (header or data
// truncated); INVALID_ARGUMENT for a malformed header (bad JSON, unknown dtype, duplicate name, shape
// and dtype that disagree with the byte span, offsets out of range, overlapping or with gaps, BOOL
// bytes other than 0/1, bad metadata), each naming the tensor.
absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes);

// Reads `path`: the header first, then each tensor's bytes straight into its tensor (no second copy of
// the file). Same errors as ParseSafetensors, prefixed with the path; NOT_FOUND for a missing file.
absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

}  // namespace psd3d
