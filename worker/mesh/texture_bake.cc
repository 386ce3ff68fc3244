#include "worker/mesh/texture_bake.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/render/rasterizer.h"

namespace psd3d {
namespace {

// Colors of `positions` [N,3] in chunks; InvalidArgument when color_fn misbehaves.
absl::StatusOr<at::Tensor> EvaluateColors(const ColorFn& color_fn, const at::Tensor& positions, int64_t chunk) {
  std::vector<at::Tensor> parts;
  const int64_t n = positions.size(0);
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t len = std::min(chunk, n - begin);
    at::Tensor c = color_fn(positions.narrow(0, begin, len));
    if (!c.defined() || c.dim() != 2 || c.size(0) != len || c.size(1) != 3) {
      return absl::InvalidArgumentError(absl::StrCat("bake: color function must return [", len, ",3], got ",
                                                     c.defined() ? c10::str(c.sizes()) : "nothing"));
    }
    c = c.to(positions.device(), at::kFloat);
    if (!at::isfinite(c).all().item<bool>()) return absl::InvalidArgumentError("bake: color function returned NaN/inf");
    parts.push_back(c.clamp(0.0, 1.0));
  }
  return parts.empty() ? at::zeros({0, 3}, positions.options()) : at::cat(parts, 0);
}

}  // namespace

at::Tensor DilateFaceIds(const at::Tensor& ids, int passes) {
  TORCH_CHECK(ids.dim() == 2 && ids.scalar_type() == at::kLong, "dilate: ids must be [H,W] int64");
  // float64 holds ids exactly (< 2^53); max-pool finds the largest neighbour, −1 where none.
  at::Tensor cur = ids.to(at::kDouble).view({1, 1, ids.size(0), ids.size(1)});
  for (int i = 0; i < passes; ++i) {
    at::Tensor grown = at::max_pool2d(cur, {3, 3}, {1, 1}, {1, 1});
    cur = at::where(cur < 0, grown, cur);
  }
  return cur.view({ids.size(0), ids.size(1)}).to(at::kLong);
}

at::Tensor SampleTexture(const at::Tensor& texture, const at::Tensor& uvs) {
  TORCH_CHECK(texture.dim() == 3 && uvs.dim() == 2 && uvs.size(1) == 2, "sample: texture [H,W,C], uvs [N,2]");
  at::Tensor input = texture.permute({2, 0, 1}).unsqueeze(0);                     // [1,C,H,W]
  at::Tensor grid = (uvs.to(texture.scalar_type()) * 2 - 1).view({1, 1, -1, 2});  // x = u, y = v (row 0 at top)
  // interpolation 0 = bilinear, padding 1 = border; align_corners false: ±1 are the outer texel edges.
  at::Tensor out = at::grid_sampler(input, grid, 0, 1, false);  // [1,C,1,N]
  return out.view({texture.size(2), -1}).t();
}

absl::StatusOr<at::Tensor> BakeTexture(const Mesh& mesh, int64_t height, int64_t width, const ColorFn& color_fn,
                                       const BakeOptions& options) {
  if (absl::Status s = ValidateMesh(mesh); !s.ok()) return s;
  if (!mesh.uvs.defined()) return absl::InvalidArgumentError("bake: the mesh has no uvs");
  if (height <= 0 || width <= 0 || height > 16384 || width > 16384) {
    return absl::InvalidArgumentError(absl::StrCat("bake: bad texture size ", height, "x", width));
  }
  if (!color_fn) return absl::InvalidArgumentError("bake: no color function");
  c10::NoGradGuard no_grad;
  const at::Tensor clip = UvToClipSpace(mesh.uvs.to(mesh.vertices.device()));
  at::Tensor ids =
      DilateFaceIds(RasterizeTriangleIds(clip, mesh.faces, height, width)[0], std::max(options.dilation_passes, 0));
  // Barycentrics of each texel centre w.r.t. its (possibly adopted) face: outside the face for gutter
  // texels, so positions continue the face's plane.
  Fragments fr = ComputeFragments(clip, mesh.faces, ids.unsqueeze(0));
  at::Tensor positions = Interpolate(mesh.vertices.unsqueeze(0), fr.tri_id, fr.bary, mesh.faces)[0];  // [H,W,3]
  at::Tensor texels = at::nonzero(ids.reshape(-1) >= 0).squeeze(1);
  absl::StatusOr<at::Tensor> colors = EvaluateColors(color_fn, positions.reshape({-1, 3}).index_select(0, texels),
                                                     std::max<int64_t>(options.max_points_per_call, 1));
  if (!colors.ok()) return colors.status();
  at::Tensor texture = at::zeros({height * width, 3}, mesh.vertices.options().dtype(at::kFloat));
  if (options.fill_rest_with_mean && texels.numel() > 0) texture.copy_(colors->mean(0).unsqueeze(0).expand_as(texture));
  texture.index_copy_(0, texels, *colors);
  return texture.view({height, width, 3});
}

}  // namespace psd3d
