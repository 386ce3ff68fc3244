#include "worker/formats/glb_reader.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "worker/formats/gltf_constants.h"
#include "worker/formats/json_lite.h"
#include "worker/formats/png.h"
#include "worker/render/color_space.h"

namespace psd3d {
namespace {

using namespace gltf;  // NOLINT: the format's enum names

// Linear color → sRGB, clamped to [0,1] on both sides (glTF colors and factors are in [0,1]).
at::Tensor SrgbInUnitRange(const at::Tensor& linear) { return LinearToSrgb(linear.clamp(0, 1)).clamp(0, 1); }


absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(absl::StrCat("GLB: ", what)); }
absl::Status Unsupported(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("GLB: unsupported feature: ", what));
}

uint32_t ReadU32(absl::string_view bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, 4);
  return v;
}

// ---- container ----------------------------------------------------------------------------------------

struct Container {
  absl::string_view json;
  std::optional<absl::string_view> bin;  // the BIN chunk, when there is one
};

// The 12-byte header, the JSON chunk and an optional BIN chunk; chunks of other types are skipped (glTF
// says readers must ignore them). Every length is checked against the bytes that are actually there.
absl::StatusOr<Container> ParseContainer(absl::string_view bytes) {
  if (bytes.size() < 12) {
    return absl::DataLossError(absl::StrCat("GLB: ", bytes.size(), " bytes, shorter than the 12-byte header"));
  }
  if (ReadU32(bytes, 0) != kGlbMagic) return Invalid("bad magic (not a GLB file)");
  if (ReadU32(bytes, 4) != 2) return Unsupported(absl::StrCat("container version ", ReadU32(bytes, 4), " (only 2)"));
  const uint32_t length = ReadU32(bytes, 8);
  if (length > bytes.size()) {
    return absl::DataLossError(
        absl::StrCat("GLB: header says ", length, " bytes but the file has ", bytes.size(), " (truncated)"));
  }
  if (length < bytes.size()) {
    return Invalid(absl::StrCat("header says ", length, " bytes but the file has ", bytes.size()));
  }
  Container c;
  bool have_json = false;
  for (size_t offset = 12, index = 0; offset < length; ++index) {
    if (length - offset < 8) return absl::DataLossError(absl::StrCat("GLB: chunk ", index, " header is truncated"));
    const uint32_t chunk_length = ReadU32(bytes, offset), type = ReadU32(bytes, offset + 4);
    offset += 8;
    if (chunk_length > length - offset) {
      return absl::DataLossError(
          absl::StrCat("GLB: chunk ", index, " of ", chunk_length, " bytes runs past the end of the file"));
    }
    if (chunk_length % 4 != 0) {
      return Invalid(absl::StrCat("chunk ", index, " length ", chunk_length, " is not a multiple of 4"));
    }
    const absl::string_view data = bytes.substr(offset, chunk_length);
    offset += chunk_length;
    if (index == 0) {
      if (type != kChunkJson) return Invalid("the first chunk is not JSON");
      c.json = data;
      have_json = true;
    } else if (type == kChunkJson) {
      return Invalid(absl::StrCat("chunk ", index, " is a second JSON chunk"));
    } else if (type == kChunkBin) {
      if (index != 1) return Invalid(absl::StrCat("the BIN chunk is chunk ", index, " (it must directly follow JSON)"));
      c.bin = data;
    }
  }
  if (!have_json) return absl::DataLossError("GLB: no JSON chunk");
  return c;
}

// ---- JSON access with the path of each value in errors -----------------------------------------------

// The glTF document: the parsed JSON and the bytes of buffer 0 (the BIN chunk).
struct Doc {
  JsonValue root;
  absl::string_view bin;
};

absl::StatusOr<const JsonValue*> Required(const JsonValue& object, absl::string_view key, const std::string& where) {
  const JsonValue* v = object.Find(key);
  if (v == nullptr) return Invalid(absl::StrCat(where, " has no \"", key, "\""));
  return v;
}

// A non-negative integer member; `fallback` when absent (an error when there is none).
absl::StatusOr<uint64_t> Uint(const JsonValue& object, absl::string_view key, const std::string& where,
                              std::optional<uint64_t> fallback = std::nullopt) {
  const JsonValue* v = object.Find(key);
  if (v == nullptr) {
    if (fallback) return *fallback;
    return Invalid(absl::StrCat(where, " has no \"", key, "\""));
  }
  std::optional<uint64_t> u = v->AsUint64();
  if (!u || *u > (uint64_t{1} << 53)) return Invalid(absl::StrCat(where, ".", key, " is not a non-negative integer"));
  return *u;
}

absl::StatusOr<std::vector<double>> Numbers(const JsonValue& object, absl::string_view key, const std::string& where,
                                            size_t count) {
  const JsonValue* v = object.Find(key);
  if (v == nullptr || !v->is_array() || v->items().size() != count) {
    return Invalid(absl::StrCat(where, ".", key, " must be an array of ", count, " numbers"));
  }
  std::vector<double> out;
  for (const JsonValue& item : v->items()) {
    std::optional<double> d = item.AsDouble();
    if (!d || !std::isfinite(*d)) {
      return Invalid(absl::StrCat(where, ".", key, " must be an array of ", count, " numbers"));
    }
    out.push_back(*d);
  }
  return out;
}

// root[array][index] as an object; `where` receives "array[index]".
absl::StatusOr<const JsonValue*> Element(const JsonValue& root, absl::string_view array, uint64_t index,
                                         std::string* where) {
  *where = absl::StrCat(array, "[", index, "]");
  const JsonValue* a = root.Find(array);
  if (a == nullptr || !a->is_array()) {
    return Invalid(absl::StrCat(*where, " is referenced but there is no \"", array, "\" array"));
  }
  if (index >= a->items().size()) {
    return Invalid(absl::StrCat(*where, " is out of range (", a->items().size(), " ", array, ")"));
  }
  const JsonValue& e = a->items()[index];
  if (!e.is_object()) return Invalid(absl::StrCat(*where, " is not an object"));
  return &e;
}

size_t ArraySize(const JsonValue& root, absl::string_view key) {
  const JsonValue* a = root.Find(key);
  return a != nullptr && a->is_array() ? a->items().size() : 0;
}

absl::Status CheckAsset(const JsonValue& root) {
  const JsonValue* asset = root.Find("asset");
  if (asset == nullptr || !asset->is_object()) return Invalid("no \"asset\" object");
  const JsonValue* version = asset->Find("version");
  if (version == nullptr || !version->is_string()) return Invalid("asset has no version string");
  if (version->text().rfind("2.", 0) != 0) {
    return Unsupported(absl::StrCat("glTF version ", version->text(), " (only 2.x)"));
  }
  if (const JsonValue* min = asset->Find("minVersion"); min != nullptr && (!min->is_string() || min->text() != "2.0")) {
    return Unsupported("asset.minVersion other than 2.0");
  }
  if (const JsonValue* required = root.Find("extensionsRequired"); required != nullptr) {
    if (!required->is_array()) return Invalid("extensionsRequired is not an array");
    for (const JsonValue& e : required->items()) {
      if (!e.is_string()) return Invalid("extensionsRequired holds a non-string");
      if (e.text() != "KHR_materials_unlit") return Unsupported(absl::StrCat("required extension ", e.text()));
    }
  }
  return absl::OkStatus();
}

// Buffer 0 must live in the BIN chunk (glTF allows the chunk up to 3 bytes longer than the buffer).
absl::StatusOr<Doc> ParseDoc(const Container& c) {
  Doc doc;
  absl::StatusOr<JsonValue> json = ParseJson(c.json);
  if (!json.ok()) return Invalid(absl::StrCat("JSON chunk: ", json.status().message()));
  doc.root = *std::move(json);
  if (!doc.root.is_object()) return Invalid("the JSON chunk is not an object");
  if (auto st = CheckAsset(doc.root); !st.ok()) return st;
  const size_t buffers = ArraySize(doc.root, "buffers");
  if (buffers > 1) return Unsupported(absl::StrCat(buffers, " buffers (only the BIN chunk)"));
  if (buffers == 1) {
    std::string where;
    absl::StatusOr<const JsonValue*> buffer = Element(doc.root, "buffers", 0, &where);
    if (!buffer.ok()) return buffer.status();
    if ((*buffer)->Find("uri") != nullptr) return Unsupported("buffers[0] has a uri (external or data-URI buffers)");
    absl::StatusOr<uint64_t> length = Uint(**buffer, "byteLength", where);
    if (!length.ok()) return length.status();
    if (!c.bin) return absl::DataLossError("GLB: buffers[0] has no BIN chunk");
    if (*length > c.bin->size() || c.bin->size() - *length > 3) {
      return Invalid(
          absl::StrCat("buffers[0].byteLength ", *length, " does not match the BIN chunk's ", c.bin->size(), " bytes"));
    }
    doc.bin = c.bin->substr(0, *length);
  }
  return doc;
}

// ---- buffer views and accessors ------------------------------------------------------------------------

struct View {
  absl::string_view bytes;
  uint64_t stride = 0;  // 0: tightly packed
};

absl::StatusOr<View> ReadView(const Doc& doc, uint64_t index) {
  std::string where;
  absl::StatusOr<const JsonValue*> v = Element(doc.root, "bufferViews", index, &where);
  if (!v.ok()) return v.status();
  absl::StatusOr<uint64_t> buffer = Uint(**v, "buffer", where);
  absl::StatusOr<uint64_t> offset = Uint(**v, "byteOffset", where, 0);
  absl::StatusOr<uint64_t> length = Uint(**v, "byteLength", where);
  absl::StatusOr<uint64_t> stride = Uint(**v, "byteStride", where, 0);
  for (const auto* s : {&buffer, &offset, &length, &stride}) {
    if (!s->ok()) return s->status();
  }
  if (*buffer >= ArraySize(doc.root, "buffers")) {
    return Invalid(absl::StrCat(where, ".buffer ", *buffer, " does not exist"));
  }
  if (*offset > doc.bin.size() || *length > doc.bin.size() - *offset) {
    return Invalid(absl::StrCat(where, " [", *offset, ", ", *offset + *length, ") runs past buffer 0's ",
                                doc.bin.size(), " bytes"));
  }
  if (*stride != 0 && (*stride < 4 || *stride > 252 || *stride % 4 != 0)) {
    return Invalid(absl::StrCat(where, ".byteStride ", *stride, " is not a multiple of 4 in [4, 252]"));
  }
  return View{doc.bin.substr(*offset, *length), *stride};
}

// What an attribute may be: its allowed types, and whether integer components (which must then be
// normalized, or must not be, for indices) are allowed.
struct AccessorRule {
  std::vector<std::string> types;  // "SCALAR", "VEC2", …
  std::vector<int> component_types;
  bool integers_normalized = true;  // integer components must carry normalized: true (false: must not)
};

int Components(const std::string& type) {
  if (type == "SCALAR") return 1;
  if (type == "VEC2") return 2;
  if (type == "VEC3") return 3;
  if (type == "VEC4") return 4;
  return 0;
}

int ComponentSize(int component_type) {
  switch (component_type) {
    case kComponentU8: return 1;
    case kComponentU16: return 2;
    case kComponentU32:
    case kComponentF32: return 4;
    default: return 0;
  }
}

template <typename T>
void Gather(absl::string_view bytes, uint64_t count, int components, uint64_t stride, double scale, double* out) {
  for (uint64_t i = 0; i < count; ++i) {
    const char* row = bytes.data() + i * stride;
    for (int c = 0; c < components; ++c) {
      T value;
      std::memcpy(&value, row + c * sizeof(T), sizeof(T));
      out[i * components + c] = static_cast<double>(value) * scale;
    }
  }
}

// Accessor `index` as a float64 [count, components] CPU tensor: floats as they are, normalized integers
// divided by their maximum, plain integers (indices) as they are. `name` says what it is for errors.
absl::StatusOr<at::Tensor> ReadAccessor(const Doc& doc, uint64_t index, const AccessorRule& rule,
                                        const std::string& name) {
  std::string where;
  absl::StatusOr<const JsonValue*> a = Element(doc.root, "accessors", index, &where);
  if (!a.ok()) return a.status();
  where = absl::StrCat(name, " (", where, ")");
  if ((*a)->Find("sparse") != nullptr) return Unsupported(absl::StrCat(where, " is sparse"));
  if ((*a)->Find("bufferView") == nullptr) return Unsupported(absl::StrCat(where, " has no bufferView"));
  absl::StatusOr<uint64_t> view_index = Uint(**a, "bufferView", where);
  absl::StatusOr<uint64_t> offset = Uint(**a, "byteOffset", where, 0);
  absl::StatusOr<uint64_t> count = Uint(**a, "count", where);
  absl::StatusOr<uint64_t> component_type = Uint(**a, "componentType", where);
  for (const auto* s : {&view_index, &offset, &count, &component_type}) {
    if (!s->ok()) return s->status();
  }
  absl::StatusOr<const JsonValue*> type = Required(**a, "type", where);
  if (!type.ok()) return type.status();
  const std::string type_name = (*type)->is_string() ? (*type)->text() : "?";
  if (std::find(rule.types.begin(), rule.types.end(), type_name) == rule.types.end()) {
    return Invalid(absl::StrCat(where, " has type ", type_name, ", expected ", absl::StrJoin(rule.types, " or ")));
  }
  const int ctype = static_cast<int>(*component_type);
  if (std::find(rule.component_types.begin(), rule.component_types.end(), ctype) == rule.component_types.end()) {
    return Unsupported(absl::StrCat(where, " componentType ", ctype));
  }
  const JsonValue* normalized_value = (*a)->Find("normalized");
  const bool normalized = normalized_value != nullptr && normalized_value->is_bool() && normalized_value->bool_value();
  if (ctype == kComponentF32 && normalized) return Invalid(absl::StrCat(where, " is a normalized float"));
  if (ctype != kComponentF32 && normalized != rule.integers_normalized) {
    return Invalid(absl::StrCat(where, rule.integers_normalized ? " has integer components that are not normalized"
                                                                : " must not be normalized"));
  }
  if (*count == 0) return Invalid(absl::StrCat(where, " has count 0"));

  absl::StatusOr<View> view = ReadView(doc, *view_index);
  if (!view.ok()) return view.status();
  const int components = Components(type_name);
  const uint64_t element = static_cast<uint64_t>(components) * ComponentSize(ctype);
  const uint64_t stride = view->stride != 0 ? view->stride : element;
  if (stride < element) {
    return Invalid(absl::StrCat(where, ": byteStride ", stride, " is smaller than an element (", element, ")"));
  }
  // count ≤ 2^53 and the view ≤ 2^32 bytes, so the products below cannot overflow once count is bounded.
  if (*offset > view->bytes.size() || *count > view->bytes.size() ||
      (*count - 1) * stride + element > view->bytes.size() - *offset) {
    return Invalid(absl::StrCat(where, ": ", *count, " elements from byte ", *offset, " run past its bufferView (",
                                view->bytes.size(), " bytes)"));
  }
  const absl::string_view bytes = view->bytes.substr(*offset);
  at::Tensor out = at::empty({static_cast<int64_t>(*count), components}, at::kDouble);
  double* dst = out.data_ptr<double>();
  switch (ctype) {
    case kComponentU8: Gather<uint8_t>(bytes, *count, components, stride, normalized ? 1.0 / 255 : 1.0, dst); break;
    case kComponentU16: Gather<uint16_t>(bytes, *count, components, stride, normalized ? 1.0 / 65535 : 1.0, dst); break;
    case kComponentU32: Gather<uint32_t>(bytes, *count, components, stride, 1.0, dst); break;
    default: Gather<float>(bytes, *count, components, stride, 1.0, dst); break;
  }
  if (!at::isfinite(out).all().item<bool>()) return Invalid(absl::StrCat(where, " has NaN or infinite values"));
  return out;
}

// ---- the primitive --------------------------------------------------------------------------------------

absl::StatusOr<const JsonValue*> ThePrimitive(const JsonValue& root) {
  const size_t meshes = ArraySize(root, "meshes");
  if (meshes != 1) return Unsupported(absl::StrCat(meshes, " meshes (exactly one is supported)"));
  std::string where;
  absl::StatusOr<const JsonValue*> mesh = Element(root, "meshes", 0, &where);
  if (!mesh.ok()) return mesh.status();
  const JsonValue* primitives = (*mesh)->Find("primitives");
  if (primitives == nullptr || !primitives->is_array() || primitives->items().empty()) {
    return Invalid("meshes[0] has no primitives");
  }
  if (primitives->items().size() != 1) {
    return Unsupported(
        absl::StrCat("meshes[0] has ", primitives->items().size(), " primitives (exactly one is supported)"));
  }
  const JsonValue& p = primitives->items()[0];
  if (!p.is_object()) return Invalid("meshes[0].primitives[0] is not an object");
  absl::StatusOr<uint64_t> mode = Uint(p, "mode", "meshes[0].primitives[0]", kModeTriangles);
  if (!mode.ok()) return mode.status();
  if (*mode != kModeTriangles) return Unsupported(absl::StrCat("primitive mode ", *mode, " (only 4, triangles)"));
  if (p.Find("targets") != nullptr) return Unsupported("morph targets");
  const JsonValue* attributes = p.Find("attributes");
  if (attributes == nullptr || !attributes->is_object()) return Invalid("meshes[0].primitives[0] has no attributes");
  return &p;
}

absl::StatusOr<at::Tensor> Faces(const Doc& doc, const JsonValue& primitive, int64_t num_vertices) {
  at::Tensor flat;
  if (primitive.Find("indices") == nullptr) {
    flat = at::arange(num_vertices, at::kLong);  // non-indexed: consecutive vertex triples
  } else {
    absl::StatusOr<uint64_t> index = Uint(primitive, "indices", "meshes[0].primitives[0]");
    if (!index.ok()) return index.status();
    absl::StatusOr<at::Tensor> values =
        ReadAccessor(doc, *index, {{"SCALAR"}, {kComponentU8, kComponentU16, kComponentU32}, false}, "indices");
    if (!values.ok()) return values.status();
    flat = values->to(at::kLong).view(-1);
    const int64_t hi = flat.max().item<int64_t>();
    if (hi >= num_vertices) {
      return Invalid(absl::StrCat("index ", hi, " is out of range for ", num_vertices, " vertices"));
    }
  }
  if (flat.numel() % 3 != 0) return Invalid(absl::StrCat(flat.numel(), " indices are not a multiple of 3 (triangles)"));
  return flat.view({-1, 3}).contiguous();
}

// ---- node transform ------------------------------------------------------------------------------------

using Mat4 = std::array<double, 16>;  // column-major, as glTF stores it

Mat4 Identity() { return {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}; }

Mat4 Multiply(const Mat4& a, const Mat4& b) {
  Mat4 c{};
  for (int col = 0; col < 4; ++col) {
    for (int row = 0; row < 4; ++row) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += a[k * 4 + row] * b[col * 4 + k];
      c[col * 4 + row] = s;
    }
  }
  return c;
}

// A node's local matrix: "matrix", or T·R·S from translation, rotation (unit quaternion xyzw), scale.
absl::StatusOr<Mat4> LocalMatrix(const JsonValue& node, const std::string& where) {
  if (node.Find("matrix") != nullptr) {
    absl::StatusOr<std::vector<double>> m = Numbers(node, "matrix", where, 16);
    if (!m.ok()) return m.status();
    Mat4 out;
    std::copy(m->begin(), m->end(), out.begin());
    if (out[3] != 0 || out[7] != 0 || out[11] != 0 || out[15] != 1) {
      return Invalid(absl::StrCat(where, ".matrix is not affine"));
    }
    return out;
  }
  std::vector<double> t = {0, 0, 0}, r = {0, 0, 0, 1}, s = {1, 1, 1};
  const std::tuple<const char*, std::vector<double>*> parts[] = {{"translation", &t}, {"rotation", &r}, {"scale", &s}};
  for (const auto& [key, values] : parts) {
    if (node.Find(key) == nullptr) continue;
    absl::StatusOr<std::vector<double>> v = Numbers(node, key, where, values->size());
    if (!v.ok()) return v.status();
    *values = *std::move(v);
  }
  const double x = r[0], y = r[1], z = r[2], w = r[3];
  const double len = std::sqrt(x * x + y * y + z * z + w * w);
  if (std::fabs(len - 1) > 1e-3) return Invalid(absl::StrCat(where, ".rotation is not a unit quaternion"));
  // Rotation matrix columns, scaled by s, then the translation column.
  return Mat4{(1 - 2 * (y * y + z * z)) * s[0],
              2 * (x * y + z * w) * s[0],
              2 * (x * z - y * w) * s[0],
              0,
              2 * (x * y - z * w) * s[1],
              (1 - 2 * (x * x + z * z)) * s[1],
              2 * (y * z + x * w) * s[1],
              0,
              2 * (x * z + y * w) * s[2],
              2 * (y * z - x * w) * s[2],
              (1 - 2 * (x * x + y * y)) * s[2],
              0,
              t[0],
              t[1],
              t[2],
              1};
}

// The world transform of the node placing mesh 0 (its local matrix after its ancestors'). Identity when
// no node uses the mesh; several instances are unsupported (which one would the judge render?).
absl::StatusOr<Mat4> MeshTransform(const JsonValue& root) {
  const size_t count = ArraySize(root, "nodes");
  std::vector<int64_t> parent(count, -1);
  std::vector<size_t> users;
  for (size_t i = 0; i < count; ++i) {
    std::string where;
    absl::StatusOr<const JsonValue*> node = Element(root, "nodes", i, &where);
    if (!node.ok()) return node.status();
    if ((*node)->Find("skin") != nullptr) return Unsupported(absl::StrCat(where, " has a skin"));
    if ((*node)->Find("mesh") != nullptr) {
      absl::StatusOr<uint64_t> mesh = Uint(**node, "mesh", where);
      if (!mesh.ok()) return mesh.status();
      if (*mesh != 0) return Invalid(absl::StrCat(where, ".mesh ", *mesh, " does not exist"));
      users.push_back(i);
    }
    if (const JsonValue* children = (*node)->Find("children"); children != nullptr) {
      if (!children->is_array()) return Invalid(absl::StrCat(where, ".children is not an array"));
      for (const JsonValue& c : children->items()) {
        std::optional<uint64_t> child = c.AsUint64();
        if (!child || *child >= count) return Invalid(absl::StrCat(where, ".children holds a bad node index"));
        if (parent[*child] != -1 || *child == i) {
          return Invalid(absl::StrCat("nodes[", *child, "] has several parents"));
        }
        parent[*child] = static_cast<int64_t>(i);
      }
    }
  }
  if (users.empty()) return Identity();
  if (users.size() > 1) return Unsupported(absl::StrCat("meshes[0] is instanced by ", users.size(), " nodes"));
  Mat4 world = Identity();
  size_t steps = 0;
  for (int64_t n = static_cast<int64_t>(users[0]); n != -1; n = parent[n]) {
    if (++steps > count) return Invalid("the node hierarchy has a cycle");
    const std::string where = absl::StrCat("nodes[", n, "]");
    absl::StatusOr<Mat4> local = LocalMatrix(root.Find("nodes")->items()[n], where);
    if (!local.ok()) return local.status();
    world = Multiply(*local, world);
  }
  return world;
}

bool IsIdentity(const Mat4& m) { return m == Identity(); }

// Positions [V,3] (float64) transformed by `m`; faces reversed when `m` mirrors (negative determinant).
void ApplyTransform(const Mat4& m, at::Tensor* positions, at::Tensor* faces) {
  if (IsIdentity(m)) return;
  at::Tensor linear = at::tensor(std::vector<double>(m.begin(), m.end()), at::kDouble).view({4, 4}).t();  // row-major
  at::Tensor rot = linear.narrow(0, 0, 3).narrow(1, 0, 3);
  *positions = at::matmul(*positions, rot.t()) + linear.narrow(0, 0, 3).select(1, 3);
  if (at::det(rot).item<double>() < 0) *faces = faces->flip(1).contiguous();
}

// ---- material ------------------------------------------------------------------------------------------

struct Material {
  std::array<double, 4> factor = {1, 1, 1, 1};  // baseColorFactor, linear
  bool has_factor = false;
  std::optional<uint64_t> texture;  // textures[] index of the base color texture
};

absl::StatusOr<Material> ReadMaterial(const JsonValue& root, const JsonValue& primitive) {
  Material out;
  if (primitive.Find("material") == nullptr) return out;
  absl::StatusOr<uint64_t> index = Uint(primitive, "material", "meshes[0].primitives[0]");
  if (!index.ok()) return index.status();
  std::string where;
  absl::StatusOr<const JsonValue*> material = Element(root, "materials", *index, &where);
  if (!material.ok()) return material.status();
  const JsonValue* pbr = (*material)->Find("pbrMetallicRoughness");
  if (pbr == nullptr) return out;
  where += ".pbrMetallicRoughness";
  if (pbr->Find("baseColorFactor") != nullptr) {
    absl::StatusOr<std::vector<double>> f = Numbers(*pbr, "baseColorFactor", where, 4);
    if (!f.ok()) return f.status();
    std::copy(f->begin(), f->end(), out.factor.begin());
    out.has_factor = true;
  }
  if (const JsonValue* info = pbr->Find("baseColorTexture"); info != nullptr) {
    if (!info->is_object()) return Invalid(absl::StrCat(where, ".baseColorTexture is not an object"));
    const std::string info_where = where + ".baseColorTexture";
    absl::StatusOr<uint64_t> tex_coord = Uint(*info, "texCoord", info_where, 0);
    if (!tex_coord.ok()) return tex_coord.status();
    if (*tex_coord != 0) return Unsupported(absl::StrCat(info_where, ".texCoord ", *tex_coord, " (only TEXCOORD_0)"));
    if (const JsonValue* ext = info->Find("extensions");
        ext != nullptr && ext->Find("KHR_texture_transform") != nullptr) {
      return Unsupported("KHR_texture_transform");
    }
    absl::StatusOr<uint64_t> texture = Uint(*info, "index", info_where);
    if (!texture.ok()) return texture.status();
    out.texture = *texture;
  }
  return out;
}

// The base color texture as float32 [H,W,3] sRGB: textures[index].source → images[] → PNG bytes in a
// bufferView.
absl::StatusOr<at::Tensor> ReadTexture(const Doc& doc, uint64_t index) {
  std::string where;
  absl::StatusOr<const JsonValue*> texture = Element(doc.root, "textures", index, &where);
  if (!texture.ok()) return texture.status();
  if ((*texture)->Find("source") == nullptr) {
    return Unsupported(absl::StrCat(where, " has no source (only PNG images)"));
  }
  absl::StatusOr<uint64_t> source = Uint(**texture, "source", where);
  if (!source.ok()) return source.status();
  absl::StatusOr<const JsonValue*> image = Element(doc.root, "images", *source, &where);
  if (!image.ok()) return image.status();
  if ((*image)->Find("uri") != nullptr) {
    return Unsupported(absl::StrCat(where, " has a uri (only images in a bufferView)"));
  }
  const JsonValue* mime = (*image)->Find("mimeType");
  if (mime == nullptr || !mime->is_string() || mime->text() != "image/png") {
    return Unsupported(absl::StrCat(where, " is not image/png"));
  }
  absl::StatusOr<uint64_t> view_index = Uint(**image, "bufferView", where);
  if (!view_index.ok()) return view_index.status();
  absl::StatusOr<View> view = ReadView(doc, *view_index);
  if (!view.ok()) return view.status();
  if (view->stride != 0) return Invalid(absl::StrCat(where, "'s bufferView has a byteStride"));
  absl::StatusOr<at::Tensor> pixels = DecodePng(view->bytes);
  if (!pixels.ok()) return Invalid(absl::StrCat(where, ": ", pixels.status().message()));
  at::Tensor rgb = pixels->size(2) == 1 ? pixels->expand({-1, -1, 3}) : pixels->narrow(2, 0, 3);
  return (rgb.to(at::kFloat) / 255.0f).contiguous();
}

// ---- attributes ----------------------------------------------------------------------------------------

std::optional<uint64_t> AttributeIndex(const JsonValue& primitive, absl::string_view name) {
  const JsonValue* v = primitive.Find("attributes")->Find(name);
  if (v == nullptr) return std::nullopt;
  std::optional<uint64_t> u = v->AsUint64();
  return u ? u : std::optional<uint64_t>(UINT64_MAX);  // a non-integer index reads as out of range
}

absl::StatusOr<at::Tensor> Attribute(const Doc& doc, const JsonValue& primitive, absl::string_view name,
                                     const AccessorRule& rule, int64_t num_vertices) {
  absl::StatusOr<at::Tensor> values = ReadAccessor(doc, *AttributeIndex(primitive, name), rule, std::string(name));
  if (!values.ok()) return values.status();
  if (values->size(0) != num_vertices) {
    return Invalid(absl::StrCat(name, " has ", values->size(0), " elements but POSITION has ", num_vertices));
  }
  return values;
}

absl::StatusOr<Mesh> DecodeDoc(const Doc& doc) {
  absl::StatusOr<const JsonValue*> primitive = ThePrimitive(doc.root);
  if (!primitive.ok()) return primitive.status();
  const JsonValue& p = **primitive;
  if (!AttributeIndex(p, "POSITION")) return Invalid("the primitive has no POSITION");
  absl::StatusOr<at::Tensor> positions =
      ReadAccessor(doc, *AttributeIndex(p, "POSITION"), {{"VEC3"}, {kComponentF32}}, "POSITION");
  if (!positions.ok()) return positions.status();
  const int64_t v = positions->size(0);
  absl::StatusOr<at::Tensor> faces = Faces(doc, p, v);
  if (!faces.ok()) return faces.status();
  absl::StatusOr<Mat4> transform = MeshTransform(doc.root);
  if (!transform.ok()) return transform.status();
  ApplyTransform(*transform, &*positions, &*faces);

  Mesh mesh;
  mesh.vertices = positions->to(at::kFloat).contiguous();
  mesh.faces = *std::move(faces);
  const AccessorRule color_rule{{"VEC3", "VEC4"}, {kComponentF32, kComponentU8, kComponentU16}};
  at::Tensor linear_colors;  // float64 [V,3]
  if (AttributeIndex(p, "COLOR_0")) {
    absl::StatusOr<at::Tensor> c = Attribute(doc, p, "COLOR_0", color_rule, v);
    if (!c.ok()) return c.status();
    linear_colors = c->narrow(1, 0, 3);
  }
  absl::StatusOr<Material> material = ReadMaterial(doc.root, p);
  if (!material.ok()) return material.status();
  const at::Tensor factor =
      at::tensor(std::vector<double>(material->factor.begin(), material->factor.begin() + 3), at::kDouble);
  const bool tinted = material->has_factor && !(factor == 1).all().item<bool>();
  if (material->texture) {
    if (!AttributeIndex(p, "TEXCOORD_0")) return Invalid("a baseColorTexture without TEXCOORD_0");
    absl::StatusOr<at::Tensor> uvs =
        Attribute(doc, p, "TEXCOORD_0", {{"VEC2"}, {kComponentF32, kComponentU8, kComponentU16}}, v);
    if (!uvs.ok()) return uvs.status();
    absl::StatusOr<at::Tensor> texture = ReadTexture(doc, *material->texture);
    if (!texture.ok()) return texture.status();
    mesh.uvs = uvs->to(at::kFloat).contiguous();
    mesh.texture =
        tinted ? SrgbInUnitRange(SrgbToLinear(*texture) * factor.to(at::kFloat)).contiguous() : *std::move(texture);
  }
  if (linear_colors.defined()) {
    mesh.colors = SrgbInUnitRange(tinted ? linear_colors * factor : linear_colors).to(at::kFloat).contiguous();
  } else if (material->has_factor && !material->texture) {
    mesh.colors = SrgbInUnitRange(factor).to(at::kFloat).expand({v, 3}).contiguous();
  }
  if (auto st = ValidateMesh(mesh); !st.ok()) return Invalid(st.message());
  return mesh;
}

}  // namespace

absl::StatusOr<Mesh> DecodeGlb(absl::string_view bytes) {
  absl::StatusOr<Container> container = ParseContainer(bytes);
  if (!container.ok()) return container.status();
  absl::StatusOr<Doc> doc = ParseDoc(*container);
  if (!doc.ok()) return doc.status();
  return DecodeDoc(*doc);
}

absl::StatusOr<Mesh> ReadGlb(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  absl::StatusOr<Mesh> mesh = DecodeGlb(*bytes);
  if (!mesh.ok()) return absl::Status(mesh.status().code(), absl::StrCat(path, ": ", mesh.status().message()));
  return mesh;
}

}  // namespace psd3d
