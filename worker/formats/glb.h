// GLB (binary glTF 2.0) export of a Mesh: the job's final artefact.
//
// One scene, one node, one mesh with one triangle primitive (mode 4). Attributes: POSITION (float VEC3,
// with the min/max glTF requires), NORMAL (float VEC3, unit length), and either
//  - TEXCOORD_0 + a baseColorTexture embedded as PNG, when the mesh has uvs and a texture, or
//  - COLOR_0 (float VEC3, converted from the mesh's sRGB to linear as glTF requires), when it has
//    vertex colors (ignored when there is a texture: glTF would multiply the two).
// Indices are uint16 when every index fits below 65535 (the primitive-restart value), else uint32.
// Positions and winding are written unchanged: the engine is y-up and CCW like glTF (docs/engine.md).
//
// Textured and vertex-colored meshes get an unlit material (KHR_materials_unlit, with a metallic 0 /
// roughness 1 PBR fallback): their colors come from score distillation over lit-looking renders, so
// the lighting is already baked into the appearance and a viewer's own lighting would apply it twice.
// Plain meshes get a default lit material so their shape stays visible.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/mesh/mesh.h"

namespace psd3d {

struct GlbOptions {
  // [V,3] float32 vertex normals to write; when undefined, area-weighted vertex normals are computed
  // from the faces. Either way they are normalised; vertices no face touches get +y.
  at::Tensor normals;
  // Use KHR_materials_unlit for textured and vertex-colored meshes (see above).
  bool unlit = true;
};

// The GLB file's bytes. Calls ValidateMesh first, so bad meshes (NaN vertices, out-of-range faces,
// wrong shapes) are INVALID_ARGUMENT; so is a mesh with no vertices or no faces, or one too large for
// GLB's 32-bit sizes. Tensors may be on any device.
absl::StatusOr<std::string> EncodeGlb(const Mesh& mesh, const GlbOptions& options = {});

// EncodeGlb, then an atomic write to `path` (file_io.h).
absl::Status WriteGlb(const std::string& path, const Mesh& mesh, const GlbOptions& options = {});

// mesh_ops' VertexNormals (area-weighted, CCW), accumulated in double, with +y for vertices that no
// (non-degenerate) face touches, since GLB normals must be unit length. Expects a validated mesh.
at::Tensor AreaWeightedVertexNormals(const at::Tensor& vertices, const at::Tensor& faces);

}  // namespace psd3d
