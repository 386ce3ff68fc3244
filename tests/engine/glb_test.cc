// GLB export: the container layout, a read-back with tinygltf (counts, min/max, exact positions and
// indices, colors, texture), the Khronos glTF-Validator on every kind of file we write (0 errors and 0
// warnings), vertex normals, and bad meshes that must be INVALID_ARGUMENT rather than a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tests/gltf_validator.h"
#include "worker/formats/glb.h"
#include "worker/formats/json_lite.h"
#include "worker/formats/png.h"

// tinygltf (Debian libtinygltf-dev) compiled here, header-only, with images decoded by our DecodePng.
#if __has_include(<tiny_gltf.h>) && __has_include(<nlohmann/json.hpp>)
#define PSD3D_HAVE_TINYGLTF 1
#define TINYGLTF_IMPLEMENTATION
#define TINYGLTF_NO_STB_IMAGE
#define TINYGLTF_NO_STB_IMAGE_WRITE
#define TINYGLTF_NO_EXTERNAL_IMAGE
#include <tiny_gltf.h>
#endif

namespace psd3d {
namespace {

// ---- meshes -----------------------------------------------------------------------------------------

// Appends two triangles for quad (a,b,c,d), wound so that their normal points along `outward`.
void AddQuad(const at::Tensor& v, int64_t a, int64_t b, int64_t c, int64_t d, const at::Tensor& outward,
             std::vector<int64_t>* faces) {
  at::Tensor n = at::cross(v[b] - v[a], v[c] - v[a], 0);
  if (at::dot(n, outward).item<float>() > 0) {
    faces->insert(faces->end(), {a, b, c, a, c, d});
  } else {
    faces->insert(faces->end(), {a, c, b, a, d, c});
  }
}

at::Tensor Faces(const std::vector<int64_t>& f) { return at::tensor(f, at::kLong).reshape({-1, 3}); }

// 8 shared corners, vertex colors (sRGB).
Mesh ColoredCube() {
  std::vector<float> p;
  for (int i = 0; i < 8; ++i) {
    p.insert(p.end(), {(i & 4) ? 0.5f : -0.5f, (i & 2) ? 0.5f : -0.5f, (i & 1) ? 0.5f : -0.5f});
  }
  Mesh m;
  m.vertices = at::tensor(p).reshape({8, 3});
  std::vector<int64_t> f;
  const int quads[6][4] = {{4, 5, 7, 6}, {0, 1, 3, 2}, {2, 3, 7, 6}, {0, 1, 5, 4}, {1, 3, 7, 5}, {0, 2, 6, 4}};
  for (const auto& q : quads) {
    at::Tensor centre = (m.vertices[q[0]] + m.vertices[q[2]]) / 2;
    AddQuad(m.vertices, q[0], q[1], q[2], q[3], centre, &f);
  }
  m.faces = Faces(f);
  m.colors = m.vertices + 0.5f;  // corners of the RGB cube: 0 and 1 in every channel
  m.colors[3] = at::tensor({0.04f, 0.5f, 0.9f});
  return m;
}

// 24 vertices (4 per side) with per-side uvs over the whole texture.
Mesh TexturedCube(int64_t texture_size) {
  std::vector<float> p, uv;
  std::vector<int64_t> f;
  for (int axis = 0; axis < 3; ++axis) {
    for (float s : {-1.f, 1.f}) {
      const int64_t base = static_cast<int64_t>(p.size() / 3);
      const float corners[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
      for (const auto& c : corners) {
        float q[3];
        q[axis] = 0.5f * s, q[(axis + 1) % 3] = 0.5f * c[0], q[(axis + 2) % 3] = 0.5f * c[1];
        p.insert(p.end(), {q[0], q[1], q[2]});
        uv.insert(uv.end(), {(c[0] + 1) / 2, (1 - c[1]) / 2});
      }
      at::Tensor v = at::tensor(p).reshape({-1, 3});
      at::Tensor out = at::zeros({3});
      out[axis] = s;
      AddQuad(v, base, base + 1, base + 2, base + 3, out, &f);
    }
  }
  Mesh m;
  m.vertices = at::tensor(p).reshape({-1, 3});
  m.faces = Faces(f);
  m.uvs = at::tensor(uv).reshape({-1, 2});
  at::Generator g = at::detail::createCPUGenerator(5);
  m.texture = at::rand({texture_size, texture_size, 3}, g);
  return m;
}

// A rows x cols height-field grid in the xz plane, CCW seen from +y.
Mesh Grid(int64_t rows, int64_t cols) {
  at::Tensor i = at::arange(rows, at::kFloat).div(rows - 1).sub(0.5).view({rows, 1}).expand({rows, cols});
  at::Tensor j = at::arange(cols, at::kFloat).div(cols - 1).sub(0.5).view({1, cols}).expand({rows, cols});
  at::Tensor y = 0.05 * at::sin(12 * i) * at::cos(9 * j);
  Mesh m;
  m.vertices = at::stack({j, y, i}, -1).reshape({-1, 3}).contiguous();
  at::Tensor r = at::arange(rows - 1, at::kLong).view({-1, 1}), c = at::arange(cols - 1, at::kLong).view({1, -1});
  at::Tensor a = (r * cols + c).flatten(), b = a + 1, d = a + cols, e = d + 1;
  // Seen from +y with x = column and z = row, (a, d, b) runs counter-clockwise.
  m.faces = at::cat({at::stack({a, d, b}, 1), at::stack({b, d, e}, 1)}, 0);
  return m;
}

Mesh SingleTriangle() {
  Mesh m;
  m.vertices = at::tensor({0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f}).reshape({3, 3});
  m.faces = at::tensor({0, 1, 2}, at::kLong).reshape({1, 3});
  return m;
}

// ---- helpers ----------------------------------------------------------------------------------------

std::string TempDir() {
  static const std::string dir = [] {
    std::string d = ::testing::TempDir() + "psd3d_glb_" + std::to_string(::getpid());
    EXPECT_EQ(std::system(("mkdir -p " + d).c_str()), 0);
    return d;
  }();
  return dir;
}

uint32_t U32At(const std::string& s, size_t pos) {
  uint32_t v;
  std::memcpy(&v, s.data() + pos, 4);
  return v;
}

struct Container {
  std::string json, bin;
};

// Checks the GLB header and chunk framing and returns the chunks.
Container CheckContainer(const std::string& glb) {
  Container c;
  EXPECT_GE(glb.size(), 28u);
  if (glb.size() < 28) return c;
  EXPECT_EQ(U32At(glb, 0), 0x46546C67u);
  EXPECT_EQ(U32At(glb, 4), 2u);
  EXPECT_EQ(U32At(glb, 8), glb.size());
  const uint32_t json_len = U32At(glb, 12);
  EXPECT_EQ(U32At(glb, 16), 0x4E4F534Au);
  EXPECT_EQ(json_len % 4, 0u);
  c.json = glb.substr(20, json_len);
  const size_t bin_at = 20 + json_len;
  const uint32_t bin_len = U32At(glb, bin_at);
  EXPECT_EQ(U32At(glb, bin_at + 4), 0x004E4942u);
  EXPECT_EQ(bin_len % 4, 0u);
  EXPECT_EQ(bin_at + 8 + bin_len, glb.size());
  c.bin = glb.substr(bin_at + 8, bin_len);
  // The JSON is padded with spaces only.
  EXPECT_EQ(c.json.find_last_not_of(' '), c.json.find_last_of('}'));
  return c;
}

std::string Encode(const Mesh& m, const GlbOptions& o = {}) {
  absl::StatusOr<std::string> glb = EncodeGlb(m, o);
  EXPECT_TRUE(glb.ok()) << glb.status();
  return glb.ok() ? *glb : std::string();
}

at::Tensor SrgbToLinearReference(const at::Tensor& c) {
  at::Tensor d = c.to(at::kDouble).clamp(0, 1);
  return at::where(d <= 0.04045, d / 12.92, at::pow((d + 0.055) / 1.055, 2.4));
}

// ---- container and JSON -------------------------------------------------------------------------------

TEST(Glb, ContainerAndJsonFollowTheSpec) {
  const std::string glb = Encode(TexturedCube(8));
  Container c = CheckContainer(glb);
  absl::StatusOr<JsonValue> root = ParseJson(c.json);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->Find("asset")->Find("version")->text(), "2.0");
  EXPECT_EQ(root->Find("asset")->Find("generator")->text(), "psd3d");
  EXPECT_EQ(root->Find("buffers")->items()[0].Find("byteLength")->AsUint64(), c.bin.size());
  EXPECT_EQ(root->Find("buffers")->items()[0].Find("uri"), nullptr);
  int with_target = 0, without_target = 0;
  for (const JsonValue& view : root->Find("bufferViews")->items()) {
    EXPECT_EQ(*view.Find("byteOffset")->AsUint64() % 4, 0u);
    EXPECT_LE(*view.Find("byteOffset")->AsUint64() + *view.Find("byteLength")->AsUint64(), c.bin.size());
    (view.Find("target") ? with_target : without_target)++;
  }
  EXPECT_EQ(with_target, 4);     // POSITION, NORMAL, TEXCOORD_0 (34962) and indices (34963)
  EXPECT_EQ(without_target, 1);  // the image
  const JsonValue& image = root->Find("images")->items()[0];
  EXPECT_EQ(image.Find("mimeType")->text(), "image/png");
  const JsonValue& view = root->Find("bufferViews")->items()[*image.Find("bufferView")->AsUint64()];
  EXPECT_EQ(c.bin.substr(*view.Find("byteOffset")->AsUint64(), 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(root->Find("extensionsUsed")->items()[0].text(), "KHR_materials_unlit");
  EXPECT_NE(root->Find("materials")->items()[0].Find("extensions")->Find("KHR_materials_unlit"), nullptr);
}

TEST(Glb, PlainMeshGetsALitMaterialAndNoUnlitExtension) {
  absl::StatusOr<JsonValue> root = ParseJson(CheckContainer(Encode(SingleTriangle())).json);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->Find("extensionsUsed"), nullptr);
  const JsonValue& mat = root->Find("materials")->items()[0];
  EXPECT_EQ(mat.Find("extensions"), nullptr);
  EXPECT_EQ(mat.Find("pbrMetallicRoughness")->Find("metallicFactor")->AsDouble(), 0.0);
  GlbOptions lit;
  lit.unlit = false;
  root = ParseJson(CheckContainer(Encode(ColoredCube(), lit)).json);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->Find("extensionsUsed"), nullptr);
}

// ---- normals ----------------------------------------------------------------------------------------

TEST(Glb, VertexNormalsAreAreaWeightedAndFollowCcwWinding) {
  // CCW seen from +z gives +z.
  Mesh t = SingleTriangle();
  at::Tensor n = AreaWeightedVertexNormals(t.vertices, t.faces);
  EXPECT_TRUE(at::allclose(n, at::tensor({0.f, 0.f, 1.f}).expand({3, 3}))) << n;
  // Vertex 0 joins a triangle of area 2 facing +z and one of area 0.5 facing -y: weights 2 : 0.5.
  at::Tensor v = at::tensor({0.f, 0.f, 0.f, 2.f, 0.f, 0.f, 0.f, 2.f, 0.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f}).reshape({5, 3});
  at::Tensor f = at::tensor({0, 1, 2, 0, 4, 3}, at::kLong).reshape({2, 3});
  n = AreaWeightedVertexNormals(v, f);
  at::Tensor want = at::tensor({0.f, -0.5f, 2.f});
  EXPECT_TRUE(at::allclose(n[0], want / want.norm(), 1e-6, 1e-6)) << n[0];
  EXPECT_TRUE(at::allclose(n[3], at::tensor({0.f, -1.f, 0.f}))) << n[3];
  // Unreferenced vertices get +y; every normal is unit length.
  at::Tensor v2 = at::cat({t.vertices, at::zeros({1, 3})});
  n = AreaWeightedVertexNormals(v2, t.faces);
  EXPECT_TRUE(at::allclose(n[3], at::tensor({0.f, 1.f, 0.f})));
  // A closed cube's normals point away from its centre (not exactly along the diagonals: a corner on a
  // quad's split diagonal gets both of that side's triangles).
  Mesh cube = ColoredCube();
  n = AreaWeightedVertexNormals(cube.vertices, cube.faces);
  EXPECT_GT((n * cube.vertices).sum(1).min().item<float>(), 0.4f) << n;
  EXPECT_LT((n.norm(2, {1}) - 1).abs().max().item<float>(), 1e-6) << n;
}

// ---- bad input --------------------------------------------------------------------------------------

TEST(Glb, BadMeshesAreInvalidArgument) {
  auto code = [](const Mesh& m, const GlbOptions& o = {}) { return EncodeGlb(m, o).status().code(); };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  Mesh m = SingleTriangle();
  m.vertices[1][2] = NAN;
  EXPECT_EQ(code(m), kInvalid);
  m = SingleTriangle();
  m.vertices[0][0] = INFINITY;
  EXPECT_EQ(code(m), kInvalid);
  m = SingleTriangle();
  m.faces[0][2] = 3;  // == V
  EXPECT_EQ(code(m), kInvalid);
  m.faces[0][2] = -1;
  EXPECT_EQ(code(m), kInvalid);
  m = SingleTriangle();
  m.faces = m.faces.to(at::kInt);
  EXPECT_EQ(code(m), kInvalid);
  m = SingleTriangle();
  m.faces = at::zeros({0, 3}, at::kLong);
  EXPECT_EQ(code(m), kInvalid);
  m = SingleTriangle();
  m.vertices = at::zeros({3, 2});
  EXPECT_EQ(code(m), kInvalid);
  EXPECT_EQ(code(Mesh{}), kInvalid);
  m = SingleTriangle();
  m.texture = at::zeros({4, 4, 3});  // no uvs
  EXPECT_EQ(code(m), kInvalid);
  m = SingleTriangle();
  m.colors = at::zeros({2, 3});
  EXPECT_EQ(code(m), kInvalid);
  GlbOptions o;
  o.normals = at::zeros({2, 3});
  EXPECT_EQ(code(SingleTriangle(), o), kInvalid);
  o.normals = at::zeros({3, 3});
  o.normals[0][0] = NAN;
  EXPECT_EQ(code(SingleTriangle(), o), kInvalid);
  absl::Status st = WriteGlb("/nonexistent-dir/x.glb", SingleTriangle());
  EXPECT_FALSE(st.ok());
  m = SingleTriangle();
  m.faces[0][1] = 7;
  st = WriteGlb(TempDir() + "/bad.glb", m);
  EXPECT_EQ(st.code(), kInvalid);
  EXPECT_NE(st.message().find("face indices"), std::string::npos) << st;
}

// ---- read-back with tinygltf ------------------------------------------------------------------------

#ifdef PSD3D_HAVE_TINYGLTF

bool DecodeImage(tinygltf::Image* image, const int, std::string* err, std::string*, int, int, const unsigned char* bytes,
                 int size, void*) {
  absl::StatusOr<at::Tensor> px = DecodePng(absl::string_view(reinterpret_cast<const char*>(bytes), size));
  if (!px.ok()) {
    *err = std::string(px.status().message());
    return false;
  }
  image->height = static_cast<int>(px->size(0));
  image->width = static_cast<int>(px->size(1));
  image->component = static_cast<int>(px->size(2));
  image->bits = 8;
  image->pixel_type = TINYGLTF_COMPONENT_TYPE_UNSIGNED_BYTE;
  image->image.assign(px->data_ptr<uint8_t>(), px->data_ptr<uint8_t>() + px->numel());
  return true;
}

tinygltf::Model Load(const std::string& glb) {
  tinygltf::TinyGLTF loader;
  loader.SetImageLoader(DecodeImage, nullptr);
  tinygltf::Model model;
  std::string err, warn;
  const bool ok = loader.LoadBinaryFromMemory(&model, &err, &warn, reinterpret_cast<const unsigned char*>(glb.data()),
                                              static_cast<unsigned int>(glb.size()));
  EXPECT_TRUE(ok) << err;
  EXPECT_EQ(warn, "");
  return model;
}

// The accessor's elements as a tensor (tightly packed, as the writer lays them out).
at::Tensor AccessorData(const tinygltf::Model& model, int index) {
  const tinygltf::Accessor& a = model.accessors.at(index);
  const tinygltf::BufferView& v = model.bufferViews.at(a.bufferView);
  const int comps = tinygltf::GetNumComponentsInType(a.type);
  const int size = tinygltf::GetComponentSizeInBytes(a.componentType);
  EXPECT_EQ(v.byteStride, 0u);
  EXPECT_EQ(v.byteLength, a.count * comps * size);
  const unsigned char* p = model.buffers.at(v.buffer).data.data() + v.byteOffset + a.byteOffset;
  at::ScalarType t = a.componentType == TINYGLTF_COMPONENT_TYPE_FLOAT ? at::kFloat
                     : a.componentType == TINYGLTF_COMPONENT_TYPE_UNSIGNED_INT ? at::kInt
                                                                                : at::kShort;
  at::Tensor out = at::empty({static_cast<int64_t>(a.count), comps}, t);
  std::memcpy(out.data_ptr(), p, a.count * comps * size);
  if (a.componentType == TINYGLTF_COMPONENT_TYPE_UNSIGNED_SHORT) return out.to(at::kInt).bitwise_and(0xFFFF).to(at::kLong);
  return t == at::kInt ? out.to(at::kLong) : out;
}

const tinygltf::Primitive& OnlyPrimitive(const tinygltf::Model& model) {
  EXPECT_EQ(model.meshes.size(), 1u);
  EXPECT_EQ(model.meshes.at(0).primitives.size(), 1u);
  return model.meshes.at(0).primitives.at(0);
}

void ExpectGeometryRoundTrips(const Mesh& m, const tinygltf::Model& model, int index_type) {
  EXPECT_EQ(model.asset.version, "2.0");
  EXPECT_EQ(model.asset.generator, "psd3d");
  ASSERT_EQ(model.scenes.size(), 1u);
  ASSERT_EQ(model.nodes.size(), 1u);
  EXPECT_EQ(model.nodes[0].mesh, 0);
  const tinygltf::Primitive& prim = OnlyPrimitive(model);
  EXPECT_EQ(prim.mode, TINYGLTF_MODE_TRIANGLES);
  const tinygltf::Accessor& pos = model.accessors.at(prim.attributes.at("POSITION"));
  EXPECT_EQ(pos.count, static_cast<size_t>(m.num_vertices()));
  ASSERT_EQ(pos.minValues.size(), 3u);
  ASSERT_EQ(pos.maxValues.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(pos.minValues[k], m.vertices.select(1, k).min().item<float>());
    EXPECT_EQ(pos.maxValues[k], m.vertices.select(1, k).max().item<float>());
  }
  EXPECT_TRUE(at::equal(AccessorData(model, prim.attributes.at("POSITION")), m.vertices));
  const tinygltf::Accessor& idx = model.accessors.at(prim.indices);
  EXPECT_EQ(idx.componentType, index_type);
  EXPECT_EQ(idx.count, static_cast<size_t>(m.faces.numel()));
  EXPECT_TRUE(at::equal(AccessorData(model, prim.indices).reshape({-1, 3}), m.faces));
  at::Tensor normals = AccessorData(model, prim.attributes.at("NORMAL"));
  EXPECT_EQ(normals.size(0), m.num_vertices());
  EXPECT_LT((normals.norm(2, {1}) - 1).abs().max().item<float>(), 1e-5);
}

TEST(GlbReadBack, VertexColoredCube) {
  Mesh m = ColoredCube();
  tinygltf::Model model = Load(Encode(m));
  ExpectGeometryRoundTrips(m, model, TINYGLTF_COMPONENT_TYPE_UNSIGNED_SHORT);
  const tinygltf::Primitive& prim = OnlyPrimitive(model);
  EXPECT_EQ(prim.attributes.count("TEXCOORD_0"), 0u);
  at::Tensor colors = AccessorData(model, prim.attributes.at("COLOR_0"));
  EXPECT_TRUE(at::allclose(colors.to(at::kDouble), SrgbToLinearReference(m.colors), 1e-6, 1e-6)) << colors;
  EXPECT_EQ(model.extensionsUsed, std::vector<std::string>{"KHR_materials_unlit"});
  EXPECT_EQ(model.materials.at(prim.material).extensions.count("KHR_materials_unlit"), 1u);
}

TEST(GlbReadBack, TexturedCubeEmbedsTheTextureAsPng) {
  Mesh m = TexturedCube(8);
  m.colors = at::zeros({m.num_vertices(), 3});  // ignored: the texture is the appearance
  tinygltf::Model model = Load(Encode(m));
  ExpectGeometryRoundTrips(m, model, TINYGLTF_COMPONENT_TYPE_UNSIGNED_SHORT);
  const tinygltf::Primitive& prim = OnlyPrimitive(model);
  EXPECT_EQ(prim.attributes.count("COLOR_0"), 0u);
  EXPECT_TRUE(at::equal(AccessorData(model, prim.attributes.at("TEXCOORD_0")), m.uvs));
  const tinygltf::Material& mat = model.materials.at(prim.material);
  EXPECT_EQ(mat.extensions.count("KHR_materials_unlit"), 1u);
  const tinygltf::Texture& tex = model.textures.at(mat.pbrMetallicRoughness.baseColorTexture.index);
  EXPECT_EQ(model.samplers.at(tex.sampler).magFilter, TINYGLTF_TEXTURE_FILTER_LINEAR);
  EXPECT_EQ(model.samplers.at(tex.sampler).minFilter, TINYGLTF_TEXTURE_FILTER_LINEAR);
  const tinygltf::Image& img = model.images.at(tex.source);
  EXPECT_EQ(img.mimeType, "image/png");
  ASSERT_EQ(img.width, 8);
  ASSERT_EQ(img.height, 8);
  ASSERT_EQ(img.component, 3);
  at::Tensor pixels = at::from_blob(const_cast<unsigned char*>(img.image.data()), {8, 8, 3}, at::kByte).clone();
  EXPECT_TRUE(at::equal(pixels, m.texture.mul(255).round().to(at::kByte)));  // sRGB as is, row 0 on top
}

TEST(GlbReadBack, IndexTypeSwitchesAtThePrimitiveRestartValue) {
  Mesh small = Grid(255, 257);  // 65535 vertices: the largest index is 65534
  ExpectGeometryRoundTrips(small, Load(Encode(small)), TINYGLTF_COMPONENT_TYPE_UNSIGNED_SHORT);
  Mesh big = Grid(256, 256);  // 65536 vertices
  ExpectGeometryRoundTrips(big, Load(Encode(big)), TINYGLTF_COMPONENT_TYPE_UNSIGNED_INT);
}

TEST(GlbReadBack, GivenNormalsAreNormalisedAndWritten) {
  Mesh m = SingleTriangle();
  GlbOptions o;
  o.normals = at::tensor({0.f, 0.f, 2.f, 0.f, 3.f, 0.f, 0.f, 0.f, 0.f}).reshape({3, 3});
  tinygltf::Model model = Load(Encode(m, o));
  at::Tensor n = AccessorData(model, OnlyPrimitive(model).attributes.at("NORMAL"));
  EXPECT_TRUE(at::allclose(n, at::tensor({0.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f}).reshape({3, 3}))) << n;
}

#else

TEST(GlbReadBack, NeedsTinyGltf) {
  FAIL() << "tinygltf is not installed: `apt-get install libtinygltf-dev nlohmann-json3-dev` (scripts/install-deps.sh)";
}

#endif  // PSD3D_HAVE_TINYGLTF

// ---- the Khronos glTF-Validator ---------------------------------------------------------------------

TEST(GltfValidator, EveryKindOfExportHasNoErrorsAndNoWarnings) {
  if (const std::string missing = testing::GltfValidatorMissing(); !missing.empty()) FAIL() << missing;
  const std::string dir = TempDir();
  struct Case {
    std::string name;
    Mesh mesh;
    GlbOptions options;
  };
  GlbOptions lit;
  lit.unlit = false;
  std::vector<Case> cases = {{"colored_cube", ColoredCube(), {}},
                             {"textured_cube", TexturedCube(16), {}},
                             {"textured_cube_npot", TexturedCube(12), {}},
                             {"plain_triangle", SingleTriangle(), {}},
                             {"lit_colored_cube", ColoredCube(), lit},
                             {"grid_uint32", Grid(300, 300), {}}};
  std::vector<std::string> files;
  for (const Case& c : cases) {
    const std::string path = dir + "/" + c.name + ".glb";
    ASSERT_TRUE(WriteGlb(path, c.mesh, c.options).ok()) << c.name;
    files.push_back(path);
  }
  const testing::GltfValidation v = testing::RunGltfValidator(files, /*fail_on_warnings=*/true);
  const std::string& output = v.output;
  ASSERT_NE(v.exit_code, -1) << output;
  EXPECT_EQ(v.exit_code, 0) << "glTF-Validator reported errors or warnings:\n" << output;
  for (const Case& c : cases) {
    EXPECT_NE(output.find(c.name + ".glb: 0 errors, 0 warnings"), std::string::npos) << output;
  }
  std::printf("%s", output.c_str());
}

}  // namespace
}  // namespace psd3d
