// Whole-file reads and crash-safe writes: the format writers (PNG, GLB, safetensors, checkpoints), the
// server (token files), the CLI (CA files) and the tests. No LibTorch and no service dependencies, so every
// build configuration has it (library psd3d_file_io).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psd3d {

// Writes `pieces` in order to a temporary file beside `path`, flushes it to disk and renames it over
// `path`, so readers see either the old file or the complete new one, never a torn write (a job killed
// mid-export must not leave a truncated GLB or checkpoint behind). The temporary is removed on error.
absl::Status WriteFileAtomically(const std::string& path, const std::vector<absl::string_view>& pieces);
inline absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  return WriteFileAtomically(path, std::vector<absl::string_view>{bytes});
}

// The whole file. NOT_FOUND when it does not exist, otherwise the OS error.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace psd3d
