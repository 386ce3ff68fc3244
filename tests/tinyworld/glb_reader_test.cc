// GLB import: round trips through the writer (positions and indices exact, colors within 1/255, the
// texture exact), hand-made files for what other writers do (interleaved views, u8 indices, normalized
// RGBA colors, no indices, node transforms, a material color), and broken files that must be errors
// naming the problem (truncated, corrupt, out of range, unsupported), never a crash.
#include "worker/formats/glb_reader.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "worker/formats/glb.h"
#include "worker/mesh/primitives.h"

namespace psd3d {
namespace {

// Whether `status` is an error whose message contains `part`.
::testing::AssertionResult ErrorWith(const absl::Status& status, const std::string& part) {
  if (status.ok()) return ::testing::AssertionFailure() << "expected an error containing '" << part << "', got OK";
  if (std::string(status.message()).find(part) == std::string::npos) {
    return ::testing::AssertionFailure() << "expected an error containing '" << part << "', got " << status;
  }
  return ::testing::AssertionSuccess();
}

// ---- writer round trips --------------------------------------------------------------------------------

Mesh ColoredSphere() {
  Mesh m = LatLongSphere(6, 8);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  m.colors = at::rand({m.num_vertices(), 3}, gen);
  m.colors[0] = at::tensor({0.f, 1.f, 0.002f});  // the ends of the range and the linear segment
  return m;
}

Mesh TexturedQuad() {
  Mesh m;
  m.vertices = at::tensor({-1.f, -1.f, 0.f, 1.f, -1.f, 0.f, 1.f, 1.f, 0.f, -1.f, 1.f, 0.f}).view({4, 3});
  m.faces = at::tensor({0, 1, 2, 0, 2, 3}, at::kLong).view({2, 3});
  m.uvs = at::tensor({0.f, 1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f}).view({4, 2});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  m.texture = at::randint(0, 256, {5, 7, 3}, gen).to(at::kFloat) / 255.0f;  // exact in 8 bits
  return m;
}

TEST(GlbReader, VertexColoredRoundTrip) {
  const Mesh m = ColoredSphere();
  absl::StatusOr<std::string> bytes = EncodeGlb(m);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<Mesh> back = DecodeGlb(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(back->vertices, m.vertices));
  EXPECT_TRUE(at::equal(back->faces, m.faces));
  ASSERT_TRUE(back->colors.defined());
  EXPECT_LE((back->colors - m.colors).abs().max().item<float>(), 1.0f / 255);
  EXPECT_FALSE(back->texture.defined());
}

TEST(GlbReader, TexturedRoundTripThroughAFile) {
  const Mesh m = TexturedQuad();
  const std::string path = ::testing::TempDir() + "/glb_reader_textured.glb";
  ASSERT_TRUE(WriteGlb(path, m).ok());
  absl::StatusOr<Mesh> back = ReadGlb(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(back->vertices, m.vertices));
  EXPECT_TRUE(at::equal(back->faces, m.faces));
  EXPECT_TRUE(at::equal(back->uvs, m.uvs));
  EXPECT_TRUE(at::equal(back->texture, m.texture));
  EXPECT_FALSE(back->colors.defined());
  std::remove(path.c_str());
}

TEST(GlbReader, Uint32IndicesRoundTrip) {
  // 70000 vertices: the writer switches to uint32 indices past 65534.
  Mesh m;
  m.vertices = at::arange(70000 * 3, at::kFloat).view({70000, 3}) / 1000.0f;
  m.faces = at::tensor({0, 1, 69999, 69998, 5, 69999}, at::kLong).view({2, 3});
  m.colors = at::full({70000, 3}, 0.5f);
  absl::StatusOr<Mesh> back = DecodeGlb(*EncodeGlb(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(back->vertices, m.vertices));
  EXPECT_TRUE(at::equal(back->faces, m.faces));
}

TEST(GlbReader, MissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<Mesh> m = ReadGlb("/nonexistent/dir/x.glb");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(ErrorWith(m.status(), "/nonexistent/dir/x.glb"));
}

TEST(GlbReader, EveryTruncationIsAnError) {
  const std::string bytes = *EncodeGlb(TexturedQuad());
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::StatusOr<Mesh> m = DecodeGlb(absl::string_view(bytes).substr(0, n));
    ASSERT_FALSE(m.ok()) << n;
  }
}

TEST(GlbReader, RandomCorruptionNeverCrashes) {
  // Every byte change either still decodes to a valid mesh or is an error. The 12-byte header is left
  // alone so the corruption reaches the chunks, the JSON and the data rather than the length check.
  const std::string good = *EncodeGlb(TexturedQuad());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(at::randint(0, 3, {1}, gen).item<int64_t>());
    for (int k = 0; k < flips; ++k) {
      const int64_t at_byte = at::randint(12, static_cast<int64_t>(bytes.size()), {1}, gen).item<int64_t>();
      bytes[at_byte] = static_cast<char>(at::randint(0, 256, {1}, gen).item<int64_t>());
    }
    absl::StatusOr<Mesh> m = DecodeGlb(bytes);
    if (m.ok()) {
      EXPECT_TRUE(ValidateMesh(*m).ok());
    } else {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

// ---- hand-made files -----------------------------------------------------------------------------------

void AppendU32(uint32_t v, std::string* out) { out->append(reinterpret_cast<const char*>(&v), 4); }

// A GLB container around `json` and `bin` (padded as the format requires).
std::string Container(std::string json, std::string bin) {
  json.append((4 - json.size() % 4) % 4, ' ');
  bin.append((4 - bin.size() % 4) % 4, '\0');
  std::string out;
  AppendU32(0x46546C67, &out);
  AppendU32(2, &out);
  AppendU32(static_cast<uint32_t>(12 + 8 + json.size() + (bin.empty() ? 0 : 8 + bin.size())), &out);
  AppendU32(static_cast<uint32_t>(json.size()), &out);
  AppendU32(0x4E4F534A, &out);
  out += json;
  if (!bin.empty()) {
    AppendU32(static_cast<uint32_t>(bin.size()), &out);
    AppendU32(0x004E4942, &out);
    out += bin;
  }
  return out;
}

template <typename T>
void Append(const std::vector<T>& values, std::string* out) {
  out->append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// One triangle: positions (36 bytes) then uint16 indices (6 bytes + 2 padding).
const std::vector<float> kTriangle = {0, 0, 0, 1, 0, 0, 0, 1, 0};

std::string TriangleBin() {
  std::string bin;
  Append(kTriangle, &bin);
  Append(std::vector<uint16_t>{0, 1, 2, 0}, &bin);
  return bin;
}

constexpr char kTriangleJson[] =
    R"({"asset":{"version":"2.0"},"buffers":[{"byteLength":44}],)"
    R"("bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":36},{"buffer":0,"byteOffset":36,"byteLength":6}],)"
    R"("accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"},)"
    R"({"bufferView":1,"componentType":5123,"count":3,"type":"SCALAR"}],)"
    R"("meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":1}]}],)"
    R"("nodes":[{"mesh":0}],"scenes":[{"nodes":[0]}],"scene":0})";

// The triangle file with `from` replaced by `to` in its JSON (which must occur).
std::string EditedTriangle(const std::string& from, const std::string& to) {
  const std::string json = kTriangleJson;
  EXPECT_NE(json.find(from), std::string::npos) << from;
  return Container(absl::StrReplaceAll(json, {{from, to}}), TriangleBin());
}

TEST(GlbReader, HandMadeTriangleReads) {
  absl::StatusOr<Mesh> m = DecodeGlb(Container(kTriangleJson, TriangleBin()));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(at::equal(m->vertices, at::tensor(kTriangle).view({3, 3})));
  EXPECT_TRUE(at::equal(m->faces, at::tensor({0, 1, 2}, at::kLong).view({1, 3})));
  EXPECT_FALSE(m->colors.defined());
}

TEST(GlbReader, InterleavedU8IndicesAndNormalizedRgbaColors) {
  // One view interleaves position (12 bytes) and RGBA8 color (4 bytes) per vertex: stride 16.
  std::string bin;
  const std::vector<uint8_t> rgba[3] = {{255, 0, 0, 128}, {0, 255, 0, 255}, {0, 0, 188, 0}};
  for (int i = 0; i < 3; ++i) {
    Append(std::vector<float>(kTriangle.begin() + 3 * i, kTriangle.begin() + 3 * i + 3), &bin);
    Append(rgba[i], &bin);
  }
  Append(std::vector<uint8_t>{0, 1, 2, 0}, &bin);  // u8 indices at 48
  const std::string json =
      R"({"asset":{"version":"2.0"},"buffers":[{"byteLength":52}],)"
      R"("bufferViews":[{"buffer":0,"byteLength":48,"byteStride":16},{"buffer":0,"byteOffset":48,"byteLength":3}],)"
      R"("accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"},)"
      R"({"bufferView":0,"byteOffset":12,"componentType":5121,"normalized":true,"count":3,"type":"VEC4"},)"
      R"({"bufferView":1,"componentType":5121,"count":3,"type":"SCALAR"}],)"
      R"("meshes":[{"primitives":[{"attributes":{"POSITION":0,"COLOR_0":1},"indices":2}]}]})";
  absl::StatusOr<Mesh> m = DecodeGlb(Container(json, bin));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(at::equal(m->vertices, at::tensor(kTriangle).view({3, 3})));
  // Linear 188/255 = 0.737 is sRGB 0.874; 0 and 1 stay.
  at::Tensor expected = at::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.8742f}).view({3, 3});
  EXPECT_TRUE(at::allclose(m->colors, expected, 0, 1e-3)) << m->colors;
}

TEST(GlbReader, NonIndexedAndAMaterialColor) {
  // No indices: vertices 0,1,2 form the triangle. A baseColorFactor with no COLOR_0 colors every vertex.
  std::string json = absl::StrReplaceAll(kTriangleJson, {{R"(,"indices":1)", R"(,"material":0)"}});
  json = absl::StrReplaceAll(
      json,
      {{R"("nodes":[{)", R"("materials":[{"pbrMetallicRoughness":{"baseColorFactor":[0.2140,1,0,1]}}],"nodes":[{)"}});
  absl::StatusOr<Mesh> m = DecodeGlb(Container(json, TriangleBin()));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(at::equal(m->faces, at::tensor({0, 1, 2}, at::kLong).view({1, 3})));
  ASSERT_TRUE(m->colors.defined());
  EXPECT_TRUE(at::allclose(m->colors[2], at::tensor({0.5f, 1.f, 0.f}), 0, 1e-3))
      << m->colors;  // linear 0.214 = sRGB 0.5
}

TEST(GlbReader, NodeTransformsApplyAndMirrorsKeepFacesOutward) {
  // Parent translates by (1,2,3); the child scales by (2,2,2).
  std::string file = EditedTriangle(
      R"("nodes":[{"mesh":0}],"scenes":[{"nodes":[0]}])",
      R"("nodes":[{"children":[1],"translation":[1,2,3]},{"mesh":0,"scale":[2,2,2]}],"scenes":[{"nodes":[0]}])");
  absl::StatusOr<Mesh> m = DecodeGlb(file);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(at::allclose(m->vertices, at::tensor({1.f, 2.f, 3.f, 3.f, 2.f, 3.f, 1.f, 4.f, 3.f}).view({3, 3})))
      << m->vertices;
  EXPECT_TRUE(at::equal(m->faces, at::tensor({0, 1, 2}, at::kLong).view({1, 3})));
  // A 90° turn about +z (quaternion) maps x to y.
  m = DecodeGlb(
      EditedTriangle(R"("nodes":[{"mesh":0}])", R"("nodes":[{"mesh":0,"rotation":[0,0,0.70710678,0.70710678]}])"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(at::allclose(m->vertices[1], at::tensor({0.f, 1.f, 0.f}), 1e-5, 1e-5)) << m->vertices;
  // A mirror (x → −x, as a matrix) reverses the winding so the face keeps facing outward.
  m = DecodeGlb(
      EditedTriangle(R"("nodes":[{"mesh":0}])", R"("nodes":[{"mesh":0,"matrix":[-1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1]}])"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(at::equal(m->faces, at::tensor({2, 1, 0}, at::kLong).view({1, 3})));
  EXPECT_EQ(m->vertices[1][0].item<float>(), -1.f);
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* message;  // a part of the error
};

TEST(GlbReader, BadFilesAreErrorsNamingTheProblem) {
  std::string bad_magic = Container(kTriangleJson, TriangleBin());
  bad_magic[0] = 'X';
  std::string long_header = Container(kTriangleJson, TriangleBin());
  long_header += "abcd";
  std::string bin_first;  // BIN chunk where JSON must be
  AppendU32(0x46546C67, &bin_first);
  AppendU32(2, &bin_first);
  AppendU32(12 + 8 + 44, &bin_first);
  AppendU32(44, &bin_first);
  AppendU32(0x004E4942, &bin_first);
  bin_first += TriangleBin();
  const std::vector<BadCase> cases = {
      {"magic", bad_magic, "magic"},
      {"trailing bytes", long_header, "header says"},
      {"BIN first", bin_first, "first chunk is not JSON"},
      {"not JSON", Container("{nope}", TriangleBin()), "JSON chunk"},
      {"glTF 1", EditedTriangle(R"("version":"2.0")", R"("version":"1.0")"), "version 1.0"},
      {"index out of range",
       Container(kTriangleJson,
                 [] {
                   std::string b = TriangleBin();
                   b[36 + 4] = 3;  // third index = 3 with 3 vertices
                   return b;
                 }()),
       "index 3 is out of range"},
      {"accessor past view", EditedTriangle(R"("count":3,"type":"VEC3")", R"("count":4,"type":"VEC3")"), "POSITION"},
      {"view past buffer", EditedTriangle(R"("byteOffset":36,"byteLength":6)", R"("byteOffset":36,"byteLength":10)"),
       "bufferViews[1]"},
      {"buffer longer than BIN", EditedTriangle(R"("byteLength":44})", R"("byteLength":60})"), "BIN chunk"},
      {"bad accessor index", EditedTriangle(R"("POSITION":0)", R"("POSITION":7)"), "accessors[7]"},
      {"float indices", EditedTriangle(R"("componentType":5123)", R"("componentType":5126)"), "componentType 5126"},
      {"vec2 positions", EditedTriangle(R"("count":3,"type":"VEC3")", R"("count":3,"type":"VEC2")"), "expected VEC3"},
      {"no POSITION", EditedTriangle(R"("POSITION":0)", R"("NORMAL":0)"), "no POSITION"},
      {"sparse", EditedTriangle(R"("count":3,"type":"VEC3")", R"("count":3,"type":"VEC3","sparse":{})"), "sparse"},
      {"lines", EditedTriangle(R"("indices":1)", R"("indices":1,"mode":1)"), "mode 1"},
      {"two primitives", EditedTriangle(R"("indices":1}])", R"("indices":1},{"attributes":{"POSITION":0}}])"),
       "2 primitives"},
      {"two meshes", EditedTriangle(R"("indices":1}]}])", R"("indices":1}]},{"primitives":[]}])"), "2 meshes"},
      {"morph targets", EditedTriangle(R"("indices":1)", R"("indices":1,"targets":[])"), "morph targets"},
      {"external buffer", EditedTriangle(R"({"byteLength":44})", R"({"byteLength":44,"uri":"x.bin"})"), "uri"},
      {"draco", EditedTriangle(R"({"asset")", R"({"extensionsRequired":["KHR_draco_mesh_compression"],"asset")"),
       "KHR_draco_mesh_compression"},
      {"two instances", EditedTriangle(R"("nodes":[{"mesh":0}])", R"("nodes":[{"mesh":0},{"mesh":0}])"),
       "instanced by 2"},
      {"skin", EditedTriangle(R"("nodes":[{"mesh":0}])", R"("nodes":[{"mesh":0,"skin":0}])"), "skin"},
      {"cycle", EditedTriangle(R"("nodes":[{"mesh":0}])", R"("nodes":[{"mesh":0,"children":[1]},{"children":[0]}])"),
       "cycle"},
      {"nan position",
       Container(kTriangleJson,
                 [] {
                   std::string b = TriangleBin();
                   const float nan = std::nanf("");
                   std::memcpy(&b[4], &nan, 4);
                   return b;
                 }()),
       "NaN"},
      {"texture without uvs",
       EditedTriangle(
           R"("indices":1}]}])",
           R"("indices":1,"material":0}]}],"materials":[{"pbrMetallicRoughness":{"baseColorTexture":{"index":0}}}])"),
       "TEXCOORD_0"},
      {"uvs of the wrong type",
       EditedTriangle(R"("attributes":{"POSITION":0},"indices":1}]}])",
                      R"("attributes":{"POSITION":0,"TEXCOORD_0":0},"indices":1,"material":0}]}],)"
                      R"("materials":[{"pbrMetallicRoughness":{"baseColorTexture":{"index":0}}}],)"
                      R"("textures":[{"source":0}],"images":[{"bufferView":0,"mimeType":"image/jpeg"}])"),
       "expected VEC2"},
  };
  for (const BadCase& c : cases) {
    absl::StatusOr<Mesh> m = DecodeGlb(c.bytes);
    EXPECT_TRUE(ErrorWith(m.status(), c.message)) << c.name;
  }
}

TEST(GlbReader, JpegAndCorruptPngTexturesAreErrors) {
  // A textured writer file whose image is relabelled as JPEG, or whose PNG bytes are broken.
  const std::string good = *EncodeGlb(TexturedQuad());
  std::string jpeg = good;
  const size_t at_mime = jpeg.find("image/png");
  ASSERT_NE(at_mime, std::string::npos);
  jpeg.replace(at_mime, 9, "image/jpg");
  absl::StatusOr<Mesh> m = DecodeGlb(jpeg);
  EXPECT_TRUE(ErrorWith(m.status(), "image/png"));

  std::string broken = good;
  const size_t at_png = broken.find("IHDR");
  ASSERT_NE(at_png, std::string::npos);
  broken[at_png + 6] ^= 0x5A;  // the width: the chunk's CRC no longer matches
  m = DecodeGlb(broken);
  EXPECT_TRUE(ErrorWith(m.status(), "images[0]"));
}

}  // namespace
}  // namespace psd3d
