#include "worker/mesh/tet_grid.h"

#include <c10/util/Exception.h>

#include <tuple>

#include "worker/mesh/kuhn_grid.h"

namespace psd3d {
namespace {

at::Tensor GridVertices(int64_t n, double h, const at::TensorOptions& long_opts) {
  const int64_t side = n + 1;
  at::Tensor id = at::arange(side * side * side, long_opts);
  at::Tensor ijk =
      at::stack({id.remainder(side), id.div(side, "floor").remainder(side), id.div(side * side, "floor")}, 1);
  // Computed in float64 and rounded once, so the centre plane of an even grid is exactly 0.
  return (ijk.to(at::kDouble) * (2.0 * h / static_cast<double>(n)) - h).to(at::kFloat);
}

at::Tensor GridTets(int64_t n, const at::TensorOptions& long_opts) {
  const int64_t side = n + 1;
  at::Tensor cube = at::arange(n * n * n, long_opts);
  // Id of each cube's corner 0 (its minimum vertex).
  at::Tensor base = cube.remainder(n) + side * (cube.div(n, "floor").remainder(n) + side * cube.div(n * n, "floor"));
  std::vector<int64_t> local(24);
  for (int t = 0; t < 6; ++t) {
    for (int k = 0; k < 4; ++k) local[4 * t + k] = KuhnCornerOffset(KuhnCorner(t, k), side);
  }
  at::Tensor offsets = at::tensor(local, at::kLong).to(long_opts.device()).view({1, 6, 4});
  return (base.view({-1, 1, 1}) + offsets).view({-1, 4});
}

}  // namespace

TetGrid TetGrid::to(const at::Device& device) const {
  TetGrid g = *this;
  g.vertices = vertices.to(device);
  g.tets = tets.to(device);
  g.edges = edges.to(device);
  g.tet_edges = tet_edges.to(device);
  return g;
}

bool IsKuhnGrid(const TetGrid& grid) {
  const int64_t n = grid.resolution, s = n + 1;
  return n > 0 && grid.vertices.defined() && grid.tets.defined() && grid.edges.defined() &&
         grid.vertices.size(0) == s * s * s && grid.tets.size(0) == 6 * n * n * n &&
         grid.edges.size(0) == KuhnNumEdges(n);
}

TetGrid MakeTetGrid(int64_t n, double half_extent, const at::Device& device) {
  // n <= 1024 keeps the edge keys lo*V + hi below 2^63.
  TORCH_CHECK(n >= 1 && n <= 1024, "MakeTetGrid: resolution must be in [1, 1024], got ", n);
  TORCH_CHECK(half_extent > 0, "MakeTetGrid: half_extent must be positive, got ", half_extent);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  TetGrid g;
  g.resolution = n;
  g.half_extent = half_extent;
  g.vertices = GridVertices(n, half_extent, long_opts);
  g.tets = GridTets(n, long_opts);

  // Every tet's six local edges as (lo, hi) keys; unique keys are the edge list, the inverse the table.
  const int64_t num_v = g.vertices.size(0);
  std::vector<int64_t> first(6), second(6);
  for (int k = 0; k < 6; ++k) {
    first[k] = kTetEdgeVertices[k][0];
    second[k] = kTetEdgeVertices[k][1];
  }
  at::Tensor a = g.tets.index_select(1, at::tensor(first, at::kLong).to(device));
  at::Tensor b = g.tets.index_select(1, at::tensor(second, at::kLong).to(device));
  at::Tensor keys = (at::minimum(a, b) * num_v + at::maximum(a, b)).reshape({-1});
  at::Tensor unique_keys, inverse;
  std::tie(unique_keys, inverse, std::ignore) = at::_unique2(keys, /*sorted=*/true, /*return_inverse=*/true);
  g.edges = at::stack({unique_keys.div(num_v, "floor"), unique_keys.remainder(num_v)}, 1);
  g.tet_edges = inverse.view({-1, 6});
  return g;
}

}  // namespace psd3d
