#include "worker/pipeline/export.h"

#include <algorithm>

#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"
#include "worker/formats/glb.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/mesh/texture_bake.h"
#include "worker/mesh/uv_atlas.h"

namespace psd3d {

absl::Status ValidateExportOptions(const ExportOptions& o) {
  if (o.texture_size != 0 && (o.texture_size < 16 || o.texture_size > 8192))
    return absl::InvalidArgumentError(absl::StrCat("export: texture_size must be 0 or in [16, 8192], got ", o.texture_size));
  if (!(o.min_component_area >= 0 && o.min_component_area <= 1))
    return absl::InvalidArgumentError("export: min_component_area must be in [0, 1]");
  return absl::OkStatus();
}

absl::StatusOr<Mesh> ColorMesh(const Mesh& surface, const NerfField& color, const ExportOptions& options) {
  if (absl::Status s = ValidateExportOptions(options); !s.ok()) return s;
  if (surface.num_faces() == 0) return absl::FailedPreconditionError("export: the surface is empty");
  c10::NoGradGuard no_grad;
  const double r = color.config().radius;
  auto albedo = [&color, r](const at::Tensor& p) {
    return color.Albedo(p.to(color.device(), at::kFloat).clamp(-r, r)).to(p.device()).clamp(0.0, 1.0);
  };
  Mesh mesh;
  mesh.vertices = surface.vertices.detach();
  mesh.faces = surface.faces;
  if (options.min_component_area > 0) mesh = RemoveFloaters(mesh, options.min_component_area);
  mesh.colors = albedo(mesh.vertices);
  if (options.texture_size == 0) return mesh;
  const int64_t size = std::max(options.texture_size, MinAtlasSize(mesh.num_faces()));
  absl::StatusOr<Mesh> atlas = PerTriangleAtlas(mesh, size);
  if (!atlas.ok()) return atlas.status();
  absl::StatusOr<at::Tensor> texture = BakeTexture(*atlas, size, size, albedo);
  if (!texture.ok()) return texture.status();
  atlas->texture = *texture;
  return atlas;
}

absl::StatusOr<std::string> ExportGlb(const Mesh& surface, const NerfField& color, const ExportOptions& options) {
  absl::StatusOr<Mesh> mesh = ColorMesh(surface, color, options);
  if (!mesh.ok()) return mesh.status();
  return EncodeGlb(*mesh);
}

}  // namespace psd3d
