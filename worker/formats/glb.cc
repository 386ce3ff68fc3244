#include "worker/formats/glb.h"

#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "worker/formats/gltf_constants.h"
#include "worker/formats/json_lite.h"
#include "worker/formats/png.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/render/color_space.h"

namespace psd3d {
namespace {

using namespace gltf;  // NOLINT: the format's enum names

constexpr int kFilterLinear = 9729;
constexpr int kWrapClampToEdge = 33071;
constexpr int64_t kPrimitiveRestartU16 = 65535;
constexpr char kUnlit[] = "KHR_materials_unlit";

absl::string_view Bytes(const at::Tensor& t) {
  return absl::string_view(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

JsonValue FloatArray(const at::Tensor& values) {  // 1-D float32 CPU tensor
  JsonValue a = JsonValue::Array();
  for (int64_t i = 0; i < values.numel(); ++i) a.Push(JsonValue::Double(values[i].item<float>()));
  return a;
}

// The BIN chunk with its bufferViews and accessors, each view starting on a 4-byte boundary.
class BinBuilder {
 public:
  int AddView(absl::string_view bytes, int target) {
    bin_.append((4 - bin_.size() % 4) % 4, '\0');
    JsonValue view = JsonValue::Object();
    view.Set("buffer", JsonValue::Int(0));
    view.Set("byteOffset", JsonValue::Uint(bin_.size()));
    view.Set("byteLength", JsonValue::Uint(bytes.size()));
    if (target != 0) view.Set("target", JsonValue::Int(target));
    bin_.append(bytes.data(), bytes.size());
    views_.Push(std::move(view));
    return static_cast<int>(views_.items().size()) - 1;
  }

  // A tightly packed accessor over a whole new view; `min`/`max` are written when not null.
  int AddAccessor(absl::string_view bytes, int target, int component_type, int64_t count, const char* type,
                  JsonValue min = JsonValue(), JsonValue max = JsonValue()) {
    JsonValue accessor = JsonValue::Object();
    accessor.Set("bufferView", JsonValue::Int(AddView(bytes, target)));
    accessor.Set("componentType", JsonValue::Int(component_type));
    accessor.Set("count", JsonValue::Int(count));
    accessor.Set("type", JsonValue::String(type));
    if (!min.is_null()) accessor.Set("min", std::move(min));
    if (!max.is_null()) accessor.Set("max", std::move(max));
    accessors_.Push(std::move(accessor));
    return static_cast<int>(accessors_.items().size()) - 1;
  }

  // Pads the chunk to 4 bytes with zeros (the GLB rule) and returns it.
  std::string TakeBin() {
    bin_.append((4 - bin_.size() % 4) % 4, '\0');
    return std::move(bin_);
  }
  JsonValue TakeViews() { return std::move(views_); }
  JsonValue TakeAccessors() { return std::move(accessors_); }

 private:
  std::string bin_;
  JsonValue views_ = JsonValue::Array();
  JsonValue accessors_ = JsonValue::Array();
};

at::Tensor NormalizeRowsOrUp(const at::Tensor& n) {
  at::Tensor len = (n * n).sum(1, /*keepdim=*/true).sqrt();
  at::Tensor up = at::tensor({0.f, 1.f, 0.f}, n.options()).expand_as(n);
  return at::where(len > 1e-20, n / len.clamp_min(1e-30), up).contiguous();
}

absl::StatusOr<at::Tensor> Normals(const Mesh& mesh, const at::Tensor& vertices, const at::Tensor& faces,
                                   const GlbOptions& options) {
  if (!options.normals.defined()) return AreaWeightedVertexNormals(vertices, faces);
  const at::Tensor& n = options.normals;
  if (n.dim() != 2 || n.size(0) != mesh.num_vertices() || n.size(1) != 3 || n.scalar_type() != at::kFloat) {
    return absl::InvalidArgumentError(absl::StrCat("EncodeGlb: normals must be [V,3] float32 with V = ",
                                                   mesh.num_vertices(), ", got ", c10::str(n.sizes())));
  }
  at::Tensor cpu = n.detach().cpu();
  if (!at::isfinite(cpu).all().item<bool>()) return absl::InvalidArgumentError("EncodeGlb: normals have NaN or infinite values");
  return NormalizeRowsOrUp(cpu);
}

// Indices as little-endian uint16 (when they all fit below the restart value) or uint32 bytes.
std::string IndexBytes(const at::Tensor& faces, int* component_type) {
  const int64_t* f = faces.data_ptr<int64_t>();
  const int64_t n = faces.numel();
  const int64_t max_index = n > 0 ? faces.max().item<int64_t>() : 0;
  std::string out;
  if (max_index < kPrimitiveRestartU16) {
    *component_type = kComponentU16;
    out.resize(n * sizeof(uint16_t));
    auto* dst = reinterpret_cast<uint16_t*>(&out[0]);
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint16_t>(f[i]);
  } else {
    *component_type = kComponentU32;
    out.resize(n * sizeof(uint32_t));
    auto* dst = reinterpret_cast<uint32_t*>(&out[0]);
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint32_t>(f[i]);
  }
  return out;
}

JsonValue Material(bool textured, bool unlit) {
  JsonValue pbr = JsonValue::Object();
  if (textured) {
    JsonValue tex = JsonValue::Object();
    tex.Set("index", JsonValue::Int(0));
    pbr.Set("baseColorTexture", std::move(tex));
  }
  pbr.Set("metallicFactor", JsonValue::Int(0));
  pbr.Set("roughnessFactor", JsonValue::Int(1));
  JsonValue material = JsonValue::Object();
  material.Set("pbrMetallicRoughness", std::move(pbr));
  if (unlit) {
    JsonValue ext = JsonValue::Object();
    ext.Set(kUnlit, JsonValue::Object());
    material.Set("extensions", std::move(ext));
  }
  return material;
}

// images/samplers/textures for one embedded PNG in bufferView `view`.
void AddTexture(int view, JsonValue* root) {
  JsonValue image = JsonValue::Object();
  image.Set("bufferView", JsonValue::Int(view));
  image.Set("mimeType", JsonValue::String("image/png"));
  root->Set("images", JsonValue::Array()).Push(std::move(image));
  JsonValue sampler = JsonValue::Object();
  sampler.Set("magFilter", JsonValue::Int(kFilterLinear));
  sampler.Set("minFilter", JsonValue::Int(kFilterLinear));
  // A texture atlas must not wrap: charts at one edge would bleed into the opposite edge.
  sampler.Set("wrapS", JsonValue::Int(kWrapClampToEdge));
  sampler.Set("wrapT", JsonValue::Int(kWrapClampToEdge));
  root->Set("samplers", JsonValue::Array()).Push(std::move(sampler));
  JsonValue texture = JsonValue::Object();
  texture.Set("sampler", JsonValue::Int(0));
  texture.Set("source", JsonValue::Int(0));
  root->Set("textures", JsonValue::Array()).Push(std::move(texture));
}

// Everything but the buffer layout: asset, the one scene/node/mesh/primitive, and its material.
JsonValue SceneJson(JsonValue attributes, int index_accessor, bool textured, bool unlit) {
  JsonValue primitive = JsonValue::Object();
  primitive.Set("attributes", std::move(attributes));
  primitive.Set("indices", JsonValue::Int(index_accessor));
  primitive.Set("material", JsonValue::Int(0));
  primitive.Set("mode", JsonValue::Int(4));  // TRIANGLES
  JsonValue gltf_mesh = JsonValue::Object();
  gltf_mesh.Set("primitives", JsonValue::Array()).Push(std::move(primitive));
  JsonValue node = JsonValue::Object();
  node.Set("mesh", JsonValue::Int(0));
  JsonValue scene = JsonValue::Object();
  scene.Set("nodes", JsonValue::Array()).Push(JsonValue::Int(0));
  JsonValue asset = JsonValue::Object();
  asset.Set("generator", JsonValue::String("psd3d"));
  asset.Set("version", JsonValue::String("2.0"));

  JsonValue root = JsonValue::Object();
  root.Set("asset", std::move(asset));
  if (unlit) root.Set("extensionsUsed", JsonValue::Array()).Push(JsonValue::String(kUnlit));
  root.Set("scene", JsonValue::Int(0));
  root.Set("scenes", JsonValue::Array()).Push(std::move(scene));
  root.Set("nodes", JsonValue::Array()).Push(std::move(node));
  root.Set("meshes", JsonValue::Array()).Push(std::move(gltf_mesh));
  root.Set("materials", JsonValue::Array()).Push(Material(textured, unlit));
  return root;
}

void AppendU32(uint32_t v, std::string* out) { out->append(reinterpret_cast<const char*>(&v), 4); }

// Header, JSON chunk (space-padded), BIN chunk (zero-padded by BinBuilder).
absl::StatusOr<std::string> Assemble(std::string json, const std::string& bin) {
  json.append((4 - json.size() % 4) % 4, ' ');
  const uint64_t total = 12 + 8 + json.size() + 8 + bin.size();
  if (total > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("EncodeGlb: ", total, " bytes exceed GLB's 4 GiB limit"));
  }
  std::string out;
  out.reserve(total);
  AppendU32(kGlbMagic, &out);
  AppendU32(2, &out);
  AppendU32(static_cast<uint32_t>(total), &out);
  AppendU32(static_cast<uint32_t>(json.size()), &out);
  AppendU32(kChunkJson, &out);
  out += json;
  AppendU32(static_cast<uint32_t>(bin.size()), &out);
  AppendU32(kChunkBin, &out);
  out += bin;
  return out;
}

}  // namespace

at::Tensor AreaWeightedVertexNormals(const at::Tensor& vertices, const at::Tensor& faces) {
  Mesh mesh;
  mesh.vertices = vertices.to(at::kDouble);  // accumulate in double: many faces meet at a vertex
  mesh.faces = faces;
  // mesh_ops gives zero for vertices no face touches; GLB normals must be unit length, so those get +y.
  return NormalizeRowsOrUp(VertexNormals(mesh)).to(vertices.scalar_type()).contiguous();
}

absl::StatusOr<std::string> EncodeGlb(const Mesh& mesh, const GlbOptions& options) {
  if (auto st = ValidateMesh(mesh); !st.ok()) return st;
  if (mesh.num_vertices() == 0 || mesh.num_faces() == 0) {
    return absl::InvalidArgumentError("EncodeGlb: mesh has no vertices or no faces");
  }
  const at::Tensor vertices = mesh.vertices.detach().cpu().contiguous();
  const at::Tensor faces = mesh.faces.cpu().contiguous();
  const int64_t v = vertices.size(0);
  // Fail before allocating anything large: vertex data alone must fit a 32-bit GLB.
  if (v * 48 + faces.numel() * 4 > static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("EncodeGlb: mesh of ", v, " vertices is too large for GLB"));
  }
  absl::StatusOr<at::Tensor> normals = Normals(mesh, vertices, faces, options);
  if (!normals.ok()) return normals.status();
  const bool textured = mesh.texture.defined();
  const bool colored = !textured && mesh.colors.defined();

  BinBuilder bin;
  JsonValue attributes = JsonValue::Object();
  attributes.Set("POSITION", JsonValue::Int(bin.AddAccessor(Bytes(vertices), kArrayBuffer, kComponentF32, v, "VEC3",
                                                            FloatArray(vertices.amin(0)),
                                                            FloatArray(vertices.amax(0)))));
  attributes.Set("NORMAL", JsonValue::Int(bin.AddAccessor(Bytes(*normals), kArrayBuffer, kComponentF32, v, "VEC3")));
  std::string png;
  if (textured) {
    const at::Tensor uvs = mesh.uvs.detach().cpu().contiguous();
    attributes.Set("TEXCOORD_0", JsonValue::Int(bin.AddAccessor(Bytes(uvs), kArrayBuffer, kComponentF32, v, "VEC2")));
    absl::StatusOr<std::string> encoded = EncodePng(mesh.texture.detach());
    if (!encoded.ok()) return encoded.status();
    png = *std::move(encoded);
  } else if (colored) {
    const at::Tensor linear = SrgbToLinear(mesh.colors.detach().cpu().clamp(0, 1)).clamp(0, 1).contiguous();
    attributes.Set("COLOR_0", JsonValue::Int(bin.AddAccessor(Bytes(linear), kArrayBuffer, kComponentF32, v, "VEC3")));
  }
  int index_type = 0;
  const std::string indices = IndexBytes(faces, &index_type);
  const int index_accessor = bin.AddAccessor(indices, kElementArrayBuffer, index_type, faces.numel(), "SCALAR");

  const bool unlit = options.unlit && (textured || colored);
  JsonValue root = SceneJson(std::move(attributes), index_accessor, textured, unlit);
  if (textured) AddTexture(bin.AddView(png, /*target=*/0), &root);
  const std::string bin_chunk = bin.TakeBin();
  root.Set("accessors", bin.TakeAccessors());
  root.Set("bufferViews", bin.TakeViews());
  JsonValue buffer = JsonValue::Object();
  buffer.Set("byteLength", JsonValue::Uint(bin_chunk.size()));
  root.Set("buffers", JsonValue::Array()).Push(std::move(buffer));
  return Assemble(root.Dump(), bin_chunk);
}

absl::Status WriteGlb(const std::string& path, const Mesh& mesh, const GlbOptions& options) {
  absl::StatusOr<std::string> bytes = EncodeGlb(mesh, options);
  if (!bytes.ok()) return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  return WriteFileAtomically(path, *bytes);
}

}  // namespace psd3d
