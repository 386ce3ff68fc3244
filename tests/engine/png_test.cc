// PNG encode/decode: exact round trips, float quantisation, the colour types and bit depths a foreign
// PNG may use (written here by a tiny spec-following encoder independent of libpng), and corrupt input
// that must fail cleanly instead of crashing (libpng's longjmp error path).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "worker/formats/png.h"

namespace psd3d {
namespace {

// ---- A minimal PNG writer following the spec (stored deflate blocks, no filtering) ----------------

uint32_t Crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

void PutBe32(uint32_t v, std::string* out) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>((v >> s) & 0xFF));
}

void PutChunk(const char* type, const std::string& data, std::string* out) {
  PutBe32(static_cast<uint32_t>(data.size()), out);
  const std::string body = std::string(type, 4) + data;
  *out += body;
  PutBe32(Crc32(body), out);
}

// zlib stream of stored (uncompressed) deflate blocks.
std::string ZlibStored(const std::string& raw) {
  std::string out = "\x78\x01";
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    out.push_back(pos + n == raw.size() ? 1 : 0);
    out.push_back(static_cast<char>(n & 0xFF));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(~n & 0xFF));
    out.push_back(static_cast<char>((~n >> 8) & 0xFF));
    out += raw.substr(pos, n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  PutBe32((b << 16) | a, &out);
  return out;
}

struct RawPng {
  int width = 0, height = 0, bit_depth = 8, color_type = 0;  // color types: 0 gray, 2 RGB, 3 palette, 4 GA, 6 RGBA
  std::vector<std::vector<uint32_t>> samples;                // per row: width * samples_per_pixel values
  std::string plte, trns;
  bool interlaced = false;
};

int SamplesPerPixel(int color_type) { return color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1; }

// One filtered scanline (filter type 0) of the given pixel columns of row y.
std::string Scanline(const RawPng& p, int y, int x0, int dx) {
  std::string line(1, '\0');
  const int spp = SamplesPerPixel(p.color_type);
  uint32_t acc = 0;
  int bits = 0;
  for (int x = x0; x < p.width; x += dx) {
    for (int s = 0; s < spp; ++s) {
      const uint32_t v = p.samples[y][x * spp + s];
      if (p.bit_depth == 16) {
        line.push_back(static_cast<char>(v >> 8));
        line.push_back(static_cast<char>(v & 0xFF));
        continue;
      }
      acc = (acc << p.bit_depth) | v;
      bits += p.bit_depth;
      if (bits == 8) {
        line.push_back(static_cast<char>(acc));
        acc = 0, bits = 0;
      }
    }
  }
  if (bits > 0) line.push_back(static_cast<char>(acc << (8 - bits)));
  return line;
}

std::string EncodeRaw(const RawPng& p) {
  std::string raw;
  if (!p.interlaced) {
    for (int y = 0; y < p.height; ++y) raw += Scanline(p, y, 0, 1);
  } else {
    const int pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    for (const auto& q : pass) {
      if (q[0] >= p.width || q[1] >= p.height) continue;  // empty pass
      for (int y = q[1]; y < p.height; y += q[3]) raw += Scanline(p, y, q[0], q[2]);
    }
  }
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  PutBe32(p.width, &ihdr);
  PutBe32(p.height, &ihdr);
  ihdr += {static_cast<char>(p.bit_depth), static_cast<char>(p.color_type), 0, 0, static_cast<char>(p.interlaced)};
  PutChunk("IHDR", ihdr, &png);
  if (!p.plte.empty()) PutChunk("PLTE", p.plte, &png);
  if (!p.trns.empty()) PutChunk("tRNS", p.trns, &png);
  PutChunk("IDAT", ZlibStored(raw), &png);
  PutChunk("IEND", "", &png);
  return png;
}

// ---- helpers ----------------------------------------------------------------------------------------

at::Tensor RandomU8(std::vector<int64_t> shape, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return at::randint(0, 256, shape, g, at::kByte);
}

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "psd3d_png_" + std::to_string(::getpid()) + "_" + name;
}

// ---- tests ------------------------------------------------------------------------------------------

TEST(Png, Uint8RoundTripIsExactForOneThreeAndFourChannels) {
  for (int64_t c : {1, 3, 4}) {
    at::Tensor img = RandomU8({13, 17, c}, 10 + c);
    absl::StatusOr<std::string> png = EncodePng(img);
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    absl::StatusOr<at::Tensor> back = DecodePng(*png);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->scalar_type(), at::kByte);
    EXPECT_TRUE(at::equal(*back, img)) << "channels " << c;
  }
}

TEST(Png, FloatIsClampedAndRounded) {
  at::Tensor img = at::tensor({-0.5f, 0.f, 0.3f / 255, 0.7f / 255, 0.5f, 1.f, 7.f, -INFINITY, INFINITY}).reshape({3, 3, 1});
  absl::StatusOr<std::string> png = EncodePng(img);
  ASSERT_TRUE(png.ok()) << png.status();
  absl::StatusOr<at::Tensor> back = DecodePng(*png);
  ASSERT_TRUE(back.ok()) << back.status();
  // 0.5*255 = 127.5 rounds half to even (128); infinities saturate.
  at::Tensor want = at::tensor({0, 0, 0, 1, 128, 255, 255, 0, 255}, at::kByte).reshape({3, 3, 1});
  EXPECT_TRUE(at::equal(*back, want)) << *back;
}

TEST(Png, FloatRoundTripIsWithinHalfAStep) {
  at::Generator g = at::detail::createCPUGenerator(3);
  at::Tensor img = at::rand({8, 9, 3}, g);
  absl::StatusOr<at::Tensor> back = DecodePng(*EncodePng(img));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_LE((back->to(at::kFloat) / 255 - img).abs().max().item<float>(), 0.5f / 255 + 1e-6f);
}

TEST(Png, RejectsBadImages) {
  at::Tensor nan = at::zeros({2, 2, 3});
  nan[1][0][2] = NAN;
  absl::StatusOr<std::string> r = EncodePng(nan);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("NaN"), std::string::npos) << r.status();
  EXPECT_EQ(EncodePng(at::zeros({4, 4})).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(at::zeros({4, 4, 2})).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(at::zeros({0, 4, 3})).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(at::zeros({4, 4, 3}, at::kInt)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(at::Tensor()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Png, NonContiguousInputIsEncodedAsSeen) {
  at::Tensor base = RandomU8({6, 5, 3}, 5);
  at::Tensor view = base.transpose(0, 1);  // [5,6,3], not contiguous
  absl::StatusOr<at::Tensor> back = DecodePng(*EncodePng(view));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(*back, view));
}

TEST(Png, DecodesForeignColorTypesAndBitDepths) {
  // Gray, 2-bit: values 0..3 expand to 0, 85, 170, 255.
  RawPng gray2{5, 2, 2, 0, {{0, 1, 2, 3, 1}, {3, 3, 0, 0, 2}}};
  absl::StatusOr<at::Tensor> g = DecodePng(EncodeRaw(gray2));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(at::equal(*g, at::tensor({0, 85, 170, 255, 85, 255, 255, 0, 0, 170}, at::kByte).reshape({2, 5, 1}))) << *g;

  // Gray + alpha becomes RGBA.
  RawPng ga{2, 1, 8, 4, {{10, 200, 30, 40}}};
  absl::StatusOr<at::Tensor> rgba = DecodePng(EncodeRaw(ga));
  ASSERT_TRUE(rgba.ok()) << rgba.status();
  EXPECT_TRUE(at::equal(*rgba, at::tensor({10, 10, 10, 200, 30, 30, 30, 40}, at::kByte).reshape({1, 2, 4}))) << *rgba;

  // 16-bit RGB scales to 8 bits (v*257 is exactly v).
  RawPng rgb16{2, 1, 16, 2, {{0, 257 * 7, 65535, 257 * 128, 257 * 255, 257}}};
  absl::StatusOr<at::Tensor> c16 = DecodePng(EncodeRaw(rgb16));
  ASSERT_TRUE(c16.ok()) << c16.status();
  EXPECT_TRUE(at::equal(*c16, at::tensor({0, 7, 255, 128, 255, 1}, at::kByte).reshape({1, 2, 3}))) << *c16;

  // Palette with transparency becomes RGBA (entries past tRNS are opaque).
  RawPng pal{3, 1, 8, 3, {{1, 0, 2}}};
  pal.plte = std::string("\x01\x02\x03\x0a\x0b\x0c\xff\x00\x80", 9);
  pal.trns = std::string("\x00\x7f", 2);
  absl::StatusOr<at::Tensor> p = DecodePng(EncodeRaw(pal));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(at::equal(*p, at::tensor({10, 11, 12, 127, 1, 2, 3, 0, 255, 0, 128, 255}, at::kByte).reshape({1, 3, 4}))) << *p;
}

TEST(Png, DecodesInterlacedImagesLikePlainOnes) {
  at::Tensor img = RandomU8({7, 9, 4}, 21);
  RawPng raw{9, 7, 8, 6, {}};
  for (int y = 0; y < 7; ++y) {
    std::vector<uint32_t> row;
    for (int i = 0; i < 9 * 4; ++i) row.push_back(img[y].flatten()[i].item<uint8_t>());
    raw.samples.push_back(row);
  }
  absl::StatusOr<at::Tensor> plain = DecodePng(EncodeRaw(raw));
  raw.interlaced = true;
  absl::StatusOr<at::Tensor> interlaced = DecodePng(EncodeRaw(raw));
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(interlaced.ok()) << interlaced.status();
  EXPECT_TRUE(at::equal(*plain, img));
  EXPECT_TRUE(at::equal(*interlaced, img));
}

TEST(Png, GarbageAndTruncationFailCleanly) {
  EXPECT_EQ(DecodePng("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodePng("definitely not a png file").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string png = *EncodePng(RandomU8({4, 5, 3}, 8));
  // Every strict prefix lacks at least part of IEND, so each must be an error, never a crash.
  for (size_t n = 0; n < png.size(); ++n) {
    absl::StatusOr<at::Tensor> r = DecodePng(absl::string_view(png).substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
  }
  // The signature followed by garbage.
  EXPECT_FALSE(DecodePng(png.substr(0, 8) + std::string(64, '\x5a')).ok());
  // Any flipped byte is caught (CRCs cover every chunk) or at worst decodes to some image.
  int failures = 0;
  for (size_t i = 0; i < png.size(); ++i) {
    std::string bad = png;
    bad[i] = static_cast<char>(bad[i] ^ 0x41);
    absl::StatusOr<at::Tensor> r = DecodePng(bad);
    if (!r.ok()) {
      ++failures;
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    } else {
      EXPECT_EQ(r->dim(), 3);
    }
  }
  EXPECT_GT(failures, static_cast<int>(png.size()) * 9 / 10);
}

TEST(Png, RejectsHugeDimensionsBeforeAllocating) {
  RawPng big{1, 1, 8, 0, {{0}}};
  std::string png = EncodeRaw(big);
  // Rewrite IHDR to claim 100000 x 100000 pixels (and fix its CRC).
  std::string ihdr_body = png.substr(12, 17);
  ihdr_body.replace(4, 8, std::string("\x00\x01\x86\xa0\x00\x01\x86\xa0", 8));
  std::string crc;
  PutBe32(Crc32(ihdr_body), &crc);
  png.replace(12, 21, ihdr_body + crc);
  absl::StatusOr<at::Tensor> r = DecodePng(png);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("exceeds user limit"), std::string::npos) << r.status();
}

TEST(Png, WriteAndReadFiles) {
  const std::string path = TempPath("rw.png");
  at::Tensor img = RandomU8({3, 4, 4}, 2);
  ASSERT_TRUE(WritePng(path, img).ok());
  absl::StatusOr<at::Tensor> back = ReadPng(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(*back, img));
  std::remove(path.c_str());
  EXPECT_EQ(ReadPng(path).status().code(), absl::StatusCode::kNotFound);
}

TEST(Png, ImageGridTilesRowMajorAndPadsWithBlack) {
  at::Tensor images = at::arange(5, at::kFloat).add(1).reshape({5, 1, 1, 1}).expand({5, 2, 3, 1}).contiguous();
  at::Tensor grid = ImageGrid(images, 3);
  ASSERT_EQ(grid.sizes(), (at::IntArrayRef{4, 9, 1}));
  // Cell (row r, col c) holds image r*3+c; the sixth cell is empty.
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) {
      const float want = r * 3 + c < 5 ? r * 3 + c + 1 : 0;
      at::Tensor cell = grid.narrow(0, r * 2, 2).narrow(1, c * 3, 3);
      EXPECT_TRUE(at::equal(cell, at::full({2, 3, 1}, want))) << r << "," << c;
    }
  }
  EXPECT_EQ(ImageGrid(images, 10).sizes(), (at::IntArrayRef{2, 15, 1}));  // columns capped at B
  EXPECT_EQ(ImageGrid(images, 1).sizes(), (at::IntArrayRef{10, 3, 1}));
  EXPECT_THROW(ImageGrid(images, 0), c10::Error);
  EXPECT_THROW(ImageGrid(images[0], 2), c10::Error);
}

}  // namespace
}  // namespace psd3d
