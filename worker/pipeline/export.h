// The pipeline's last stage: the final surface and its color field become the job's GLB. Floaters
// (small disconnected pieces) are removed, every vertex gets the field's albedo as its color, and,
// with a texture size, the mesh is split into a per-triangle UV atlas and the albedo is baked into a
// texture (texture_bake.h), which the GLB embeds as PNG. The GLB is unlit (glb.h says why).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "worker/fields/nerf_field.h"
#include "worker/mesh/mesh.h"

namespace psd3d {

struct ExportOptions {
  // Texture atlas size in texels (raised to the smallest size that fits the faces); 0 writes vertex
  // colors only.
  int64_t texture_size = 512;
  double min_component_area = 0.05;  // floaters: pieces below this fraction of the largest's area go
};

absl::Status ValidateExportOptions(const ExportOptions& options);

// The colored (and, with a texture size, textured) mesh. FAILED_PRECONDITION for an empty surface.
absl::StatusOr<Mesh> ColorMesh(const Mesh& surface, const NerfField& color, const ExportOptions& options);

// ColorMesh, then the GLB's bytes (glb.h).
absl::StatusOr<std::string> ExportGlb(const Mesh& surface, const NerfField& color, const ExportOptions& options);

}  // namespace psd3d
