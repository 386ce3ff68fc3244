// GLB (binary glTF 2.0) import of one triangle mesh: the judge reads the jobs' exported GLBs back (and
// other single-mesh GLBs) to render and measure them.
//
// What is read: the one mesh's one primitive (mode TRIANGLES): POSITION (float VEC3), indices (u8, u16
// or u32; absent means 0, 1, 2, …), optional COLOR_0 (VEC3 or VEC4; float, or normalized u8/u16; alpha
// dropped; glTF's linear values converted to the Mesh's sRGB, the inverse of glb.h's writer), optional
// TEXCOORD_0 (float or normalized u8/u16 VEC2; same UV convention as Mesh) and the material's
// baseColorTexture, a PNG embedded through a bufferView (decoded with png.h, alpha dropped). A
// baseColorFactor other than white multiplies the colors and texture (in linear space, as glTF does);
// with neither colors nor a texture, an explicit factor becomes uniform vertex colors. The transform of
// the node that places the mesh (with its parents) is applied to the positions, and a mirroring
// transform reverses the winding so faces stay CCW. NORMAL and other attributes are ignored: renderers
// compute their own shading.
//
// Strict: a file that is not exactly this is INVALID_ARGUMENT naming what is wrong, never a crash or a
// silent misread: bad header, length or chunks (DATA_LOSS when the bytes end early), JSON that is not
// glTF, out-of-range indices, accessors or buffer views that run past their view, buffer or chunk,
// NaN positions, and unsupported features (several meshes or primitives, other modes, sparse accessors,
// external or data-URI buffers and images, non-PNG images, morph targets, skins, texCoord sets other
// than 0, required extensions other than KHR_materials_unlit, KHR_texture_transform).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/mesh/mesh.h"

namespace psd3d {

// The mesh in a GLB file's bytes; CPU tensors, passes ValidateMesh.
absl::StatusOr<Mesh> DecodeGlb(absl::string_view bytes);

// Reads and decodes `path`; errors are prefixed with the path (NOT_FOUND for a missing file).
absl::StatusOr<Mesh> ReadGlb(const std::string& path);

}  // namespace psd3d
