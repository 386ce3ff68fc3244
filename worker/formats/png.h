// PNG encode/decode in memory (libpng), for embedded GLB textures, preview images and test fixtures.
// Images here are single [H,W,C] tensors, channels last, C in {1,3,4} (gray, RGB, RGBA), row 0 at the
// top. PNG stores 8-bit sRGB-encoded values as they are: no gamma or colour-space conversion happens.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psd3d {

// PNG bytes of `image` [H,W,C], C in {1,3,4}, uint8 or float32 (any device). Floats are clamped to
// [0,1] and rounded to the nearest of 0..255; a NaN anywhere is INVALID_ARGUMENT (it would otherwise
// turn silently into black). H and W must be positive.
absl::StatusOr<std::string> EncodePng(const at::Tensor& image);

// The pixels of a PNG as a CPU uint8 [H,W,C] tensor: C = 1 for gray, 3 for RGB, 4 when the file has
// alpha (gray+alpha becomes RGBA). Palette, low bit depths and 16-bit are converted to 8-bit; interlaced
// files are de-interlaced. Corrupt, truncated or non-PNG bytes are INVALID_ARGUMENT with libpng's
// reason; images over 16384 px on a side or 2^28 pixels are rejected before any large allocation.
absl::StatusOr<at::Tensor> DecodePng(absl::string_view bytes);

// EncodePng, then an atomic write to `path` (file_io.h).
absl::Status WritePng(const std::string& path, const at::Tensor& image);
// Reads and decodes `path`.
absl::StatusOr<at::Tensor> ReadPng(const std::string& path);

// Tiles `images` [B,H,W,C] (B >= 1) row-major into one [rows*H, cols*W, C] image of the same dtype and
// device, cols = min(columns, B), rows = ceil(B/cols); unused cells of the last row are zero (black).
// For preview grids of a batch of rendered views.
at::Tensor ImageGrid(const at::Tensor& images, int64_t columns);

}  // namespace psd3d
