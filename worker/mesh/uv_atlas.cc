#include "worker/mesh/uv_atlas.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace psd3d {
namespace {

int64_t GridSide(int64_t num_faces) {
  const int64_t cells = (num_faces + 1) / 2;
  int64_t k = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(cells))));
  while (k * k < cells) ++k;  // guard against rounding
  while (k > 1 && (k - 1) * (k - 1) >= cells) --k;
  return k;
}

double MinCell(const AtlasOptions& o) { return kMinAtlasLeg + (2.0 + std::sqrt(2.0)) * o.gutter; }

}  // namespace

int64_t MinAtlasSize(int64_t num_faces, const AtlasOptions& options) {
  return GridSide(std::max<int64_t>(num_faces, 1)) * static_cast<int64_t>(std::ceil(MinCell(options)));
}

absl::StatusOr<Mesh> PerTriangleAtlas(const Mesh& mesh, int64_t texture_size, const AtlasOptions& options) {
  if (absl::Status s = ValidateMesh(mesh); !s.ok()) return s;
  const int64_t f = mesh.num_faces();
  if (f == 0) return absl::InvalidArgumentError("uv atlas: the mesh has no faces");
  if (!(options.gutter >= 0.0)) return absl::InvalidArgumentError("uv atlas: gutter must be >= 0");
  const int64_t k = GridSide(f);
  const double s = static_cast<double>(texture_size / k);
  const double g = options.gutter, d = std::sqrt(2.0) * g;
  if (s - (2.0 + std::sqrt(2.0)) * g < kMinAtlasLeg) {
    return absl::InvalidArgumentError(absl::StrCat("uv atlas: ", f, " faces need a texture of at least ",
                                                   MinAtlasSize(f, options), " texels, got ", texture_size));
  }
  const auto dev = mesh.vertices.device();
  const auto fopts = at::TensorOptions().dtype(at::kDouble).device(dev);
  // Cell-local corners (texels) of the two halves, [2,3,2].
  at::Tensor halves = at::tensor({g, g, s - g - d, g, g, s - g - d,  //
                                  s - g, s - g, g + d, s - g, s - g, g + d},
                                 at::TensorOptions().dtype(at::kDouble))
                          .view({2, 3, 2})
                          .to(dev);
  at::Tensor face = at::arange(f, fopts.dtype(at::kLong));
  at::Tensor cell = at::div(face, 2, "trunc");
  at::Tensor origin =
      at::stack({at::remainder(cell, k), at::div(cell, k, "trunc")}, 1).to(at::kDouble) * s;  // [F,2] x,y
  at::Tensor corners = halves.index_select(0, at::remainder(face, 2)) + origin.unsqueeze(1);  // [F,3,2]
  at::Tensor uvs = (corners / static_cast<double>(texture_size)).reshape({3 * f, 2}).to(at::kFloat);

  Mesh out;
  at::Tensor corner_vertex = mesh.faces.reshape(-1);
  out.vertices = mesh.vertices.index_select(0, corner_vertex);
  out.faces = at::arange(3 * f, mesh.faces.options()).view({f, 3});
  out.uvs = uvs;
  if (mesh.colors.defined()) out.colors = mesh.colors.index_select(0, corner_vertex);
  return out;
}

}  // namespace psd3d
