// libpng reports errors by longjmp to the last setjmp. Two rules keep that safe in C++ here:
//  - every setjmp sits in a small function (WritePixels, ReadHeader, ReadPixels) that owns no object
//    with a destructor, so the longjmp skips no C++ cleanup; the libpng structs are freed by a guard
//    that lives in the caller;
//  - our callbacks (I/O, errors) never let a C++ exception cross libpng's C frames.
#include "worker/formats/png.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace psd3d {
namespace {

constexpr uint32_t kMaxDecodeSide = 16384;
constexpr uint64_t kMaxDecodePixels = uint64_t{1} << 28;

// Shared by the error and I/O callbacks (libpng's error pointer and I/O pointer both point here).
struct PngContext {
  char error[256] = {0};
  char warning[256] = {0};  // the last warning, often the real cause (e.g. a size limit before "Invalid IHDR")
  std::string* out = nullptr;  // encoding
  const unsigned char* data = nullptr;  // decoding
  size_t size = 0;
  size_t pos = 0;
};

[[noreturn]] void OnError(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->error, sizeof(ctx->error), "%s", msg != nullptr ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

// Warnings (e.g. a bad ancillary-chunk CRC) are not failures; keep the last one to explain a later error.
void OnWarning(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->warning, sizeof(ctx->warning), "%s", msg != nullptr ? msg : "");
}

void OnWrite(png_structp png, png_bytep data, png_size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  bool failed = false;
  try {
    ctx->out->append(reinterpret_cast<const char*>(data), length);
  } catch (...) {
    failed = true;  // leave the catch block before longjmp-ing out through png_error
  }
  if (failed) png_error(png, "out of memory while encoding PNG");
}

void OnFlush(png_structp) {}

void OnRead(png_structp png, png_bytep data, png_size_t length) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (ctx->size - ctx->pos < length) png_error(png, "truncated PNG data");
  std::memcpy(data, ctx->data + ctx->pos, length);
  ctx->pos += length;
}

// Frees the libpng structs however the encode/decode ends.
struct WriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteGuard() { png_destroy_write_struct(&png, &info); }
};
struct ReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadGuard() { png_destroy_read_struct(&png, &info, nullptr); }
};

bool WritePixels(png_structp png, png_infop info, const uint8_t* pixels, uint32_t width, uint32_t height,
                 int color_type, size_t row_bytes) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (uint32_t y = 0; y < height; ++y) png_write_row(png, pixels + static_cast<size_t>(y) * row_bytes);
  png_write_end(png, nullptr);
  return true;
}

struct HeaderInfo {
  uint32_t width = 0, height = 0;
  int channels = 0;
  size_t row_bytes = 0;
};

bool ReadHeader(png_structp png, png_infop info, HeaderInfo* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_user_limits(png, kMaxDecodeSide, kMaxDecodeSide);
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  const bool has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  if (bit_depth == 16) png_set_scale_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (has_trns) png_set_tRNS_to_alpha(png);
  // Gray with alpha has no 2-channel form in the engine: make it RGBA.
  if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA || (color_type == PNG_COLOR_TYPE_GRAY && has_trns)) {
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->row_bytes = png_get_rowbytes(png, info);
  return true;
}

bool ReadPixels(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);  // checks the chunks after the image data up to IEND
  return true;
}

absl::Status PngError(absl::string_view what, const PngContext& ctx) {
  if (ctx.warning[0] == '\0') return absl::InvalidArgumentError(absl::StrCat(what, ": ", ctx.error));
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", ctx.error, " (after warning: ", ctx.warning, ")"));
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const at::Tensor& image) {
  if (!image.defined() || image.dim() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("EncodePng: image must be [H,W,C], got ", image.defined() ? c10::str(image.sizes()) : "undefined"));
  }
  const int64_t h = image.size(0), w = image.size(1), c = image.size(2);
  if (c != 1 && c != 3 && c != 4) {
    return absl::InvalidArgumentError(absl::StrCat("EncodePng: channels must be 1, 3 or 4, got ", c));
  }
  if (h <= 0 || w <= 0 || h > 0x7fffffff || w > 0x7fffffff) {
    return absl::InvalidArgumentError(absl::StrCat("EncodePng: invalid size ", h, "x", w));
  }
  at::Tensor pixels;
  if (image.scalar_type() == at::kByte) {
    pixels = image.cpu().contiguous();
  } else if (image.scalar_type() == at::kFloat) {
    at::Tensor f = image.cpu();
    const int64_t nans = at::isnan(f).sum().item<int64_t>();
    if (nans > 0) return absl::InvalidArgumentError(absl::StrCat("EncodePng: image has ", nans, " NaN values"));
    pixels = f.clamp(0, 1).mul(255).round().to(at::kByte).contiguous();
  } else {
    return absl::InvalidArgumentError(absl::StrCat("EncodePng: dtype must be uint8 or float32, got ", image.scalar_type()));
  }

  PngContext ctx;
  std::string out;
  ctx.out = &out;
  WriteGuard guard;
  guard.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, OnError, OnWarning);
  if (guard.png == nullptr) return absl::ResourceExhaustedError("EncodePng: png_create_write_struct failed");
  guard.info = png_create_info_struct(guard.png);
  if (guard.info == nullptr) return absl::ResourceExhaustedError("EncodePng: png_create_info_struct failed");
  png_set_write_fn(guard.png, &ctx, OnWrite, OnFlush);
  const int color_type = c == 1 ? PNG_COLOR_TYPE_GRAY : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
  if (!WritePixels(guard.png, guard.info, pixels.data_ptr<uint8_t>(), static_cast<uint32_t>(w),
                   static_cast<uint32_t>(h), color_type, static_cast<size_t>(w * c))) {
    return PngError("EncodePng", ctx);
  }
  return out;
}

absl::StatusOr<at::Tensor> DecodePng(absl::string_view bytes) {
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0) {
    return absl::InvalidArgumentError("DecodePng: not a PNG (bad signature)");
  }
  PngContext ctx;
  ctx.data = reinterpret_cast<const unsigned char*>(bytes.data());
  ctx.size = bytes.size();
  ReadGuard guard;
  guard.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, OnError, OnWarning);
  if (guard.png == nullptr) return absl::ResourceExhaustedError("DecodePng: png_create_read_struct failed");
  guard.info = png_create_info_struct(guard.png);
  if (guard.info == nullptr) return absl::ResourceExhaustedError("DecodePng: png_create_info_struct failed");
  png_set_read_fn(guard.png, &ctx, OnRead);

  HeaderInfo header;
  if (!ReadHeader(guard.png, guard.info, &header)) return PngError("DecodePng", ctx);
  if (uint64_t{header.width} * header.height > kMaxDecodePixels) {
    return absl::InvalidArgumentError(
        absl::StrCat("DecodePng: image of ", header.width, "x", header.height, " pixels is too large"));
  }
  if (header.channels != 1 && header.channels != 3 && header.channels != 4) {
    return absl::InvalidArgumentError(absl::StrCat("DecodePng: unexpected channel count ", header.channels));
  }
  if (header.row_bytes != size_t{header.width} * header.channels) {
    return absl::InvalidArgumentError(absl::StrCat("DecodePng: unexpected row size ", header.row_bytes));
  }
  at::Tensor image = at::empty({header.height, header.width, header.channels}, at::kByte);
  std::vector<png_bytep> rows(header.height);
  for (uint32_t y = 0; y < header.height; ++y) rows[y] = image.data_ptr<uint8_t>() + size_t{y} * header.row_bytes;
  if (!ReadPixels(guard.png, guard.info, rows.data())) return PngError("DecodePng", ctx);
  return image;
}

absl::Status WritePng(const std::string& path, const at::Tensor& image) {
  absl::StatusOr<std::string> bytes = EncodePng(image);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

absl::StatusOr<at::Tensor> ReadPng(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<at::Tensor> image = DecodePng(*bytes);
  if (!image.ok()) return absl::Status(image.status().code(), absl::StrCat(path, ": ", image.status().message()));
  return image;
}

at::Tensor ImageGrid(const at::Tensor& images, int64_t columns) {
  TORCH_CHECK(images.dim() == 4 && images.size(0) >= 1, "ImageGrid: images must be [B,H,W,C] with B >= 1, got ",
              images.sizes());
  TORCH_CHECK(columns >= 1, "ImageGrid: columns must be >= 1, got ", columns);
  const int64_t b = images.size(0), h = images.size(1), w = images.size(2), c = images.size(3);
  const int64_t cols = std::min(columns, b);
  const int64_t rows = (b + cols - 1) / cols;
  at::Tensor cells = images;
  if (rows * cols > b) cells = at::cat({images, at::zeros({rows * cols - b, h, w, c}, images.options())}, 0);
  // [rows, cols, H, W, C] -> [rows, H, cols, W, C]: each output row of pixels runs across one grid row.
  return cells.reshape({rows, cols, h, w, c}).permute({0, 2, 1, 3, 4}).reshape({rows * h, cols * w, c});
}

}  // namespace psd3d
