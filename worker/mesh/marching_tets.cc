#include "worker/mesh/marching_tets.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>
#include <tuple>
#include <vector>

#include "worker/mesh/marching_tets_cuda.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace psd3d {
namespace {

void CheckGrid(const TetGrid& grid, const char* who) {
  TORCH_CHECK(grid.tets.defined() && grid.edges.defined() && grid.tet_edges.defined(), who, ": the grid is empty");
  TORCH_CHECK(grid.tets.dim() == 2 && grid.tets.size(1) == 4 && grid.tets.scalar_type() == at::kLong, who,
              ": grid tets must be [T,4] int64, got ", grid.tets.sizes());
  TORCH_CHECK(grid.edges.dim() == 2 && grid.edges.size(1) == 2 && grid.edges.scalar_type() == at::kLong, who,
              ": grid edges must be [E,2] int64, got ", grid.edges.sizes());
  TORCH_CHECK(grid.tet_edges.dim() == 2 && grid.tet_edges.size(0) == grid.tets.size(0) && grid.tet_edges.size(1) == 6 &&
                  grid.tet_edges.scalar_type() == at::kLong,
              who, ": grid tet_edges must be [T,6] int64, got ", grid.tet_edges.sizes());
}

void ThrowIfNonFinite(int64_t nan, int64_t inf, const char* who, const char* what) {
  TORCH_CHECK(nan == 0 && inf == 0, who, ": ", what, " has ", nan, " NaN and ", inf, " infinite values");
}

// Counts per vertex (a row of positions, or one sdf value), as the CUDA classify kernel does.
void CheckFinite(const at::Tensor& t, const char* who, const char* what) {
  c10::NoGradGuard no_grad;
  if (at::isfinite(t).all().item<bool>()) return;
  const at::Tensor rows = t.reshape({t.size(0), -1});
  const at::Tensor nan = at::isnan(rows).any(1);
  ThrowIfNonFinite(nan.sum().item<int64_t>(), ((~at::isfinite(rows)).any(1) & ~nan).sum().item<int64_t>(), who, what);
}

// Validates the sdf's shape, dtype and device against the grid and returns it as [V] (a view, so gradients
// still flow). Finiteness is checked by the caller: on CUDA the classify kernel counts NaN/inf for free.
at::Tensor CheckedSdf(const at::Tensor& sdf, const TetGrid& grid, const char* who) {
  CheckGrid(grid, who);
  TORCH_CHECK(sdf.defined(), who, ": sdf is undefined");
  const int64_t v = grid.vertices.defined() ? grid.vertices.size(0) : -1;
  TORCH_CHECK((sdf.dim() == 1 || (sdf.dim() == 2 && sdf.size(1) == 1)) && sdf.size(0) == v, who,
              ": sdf must be [V] or [V,1] with V = ", v, " grid vertices, got ", sdf.sizes());
  TORCH_CHECK(sdf.scalar_type() == at::kFloat || sdf.scalar_type() == at::kDouble, who,
              ": sdf must be float32 or float64, got ", sdf.scalar_type());
  TORCH_CHECK(sdf.device() == grid.tets.device(), who, ": sdf is on ", sdf.device(), " but the grid on ",
              grid.tets.device());
  return sdf.reshape({-1});
}

void CheckPositions(const at::Tensor& positions, const at::Tensor& sdf, const char* who) {
  TORCH_CHECK(positions.defined() && positions.dim() == 2 && positions.size(1) == 3 && positions.size(0) == sdf.size(0),
              who, ": positions must be [V,3] with V = ", sdf.size(0), ", got ",
              positions.defined() ? positions.sizes() : at::IntArrayRef{});
  TORCH_CHECK(positions.scalar_type() == sdf.scalar_type(), who, ": positions (", positions.scalar_type(),
              ") and sdf (", sdf.scalar_type(), ") must have the same dtype");
  TORCH_CHECK(positions.device() == sdf.device(), who, ": positions and sdf must be on one device");
}

// The case table as tensors on `device`: triangles [16,6] (local edge ids, -1 padded) and counts [16].
std::pair<at::Tensor, at::Tensor> TableTensors(const at::Device& device) {
  std::vector<int64_t> tri(16 * 6), num(16);
  for (int c = 0; c < 16; ++c) {
    for (int k = 0; k < 6; ++k) tri[6 * c + k] = kMarchingTetsTable.triangles[c][k];
    num[c] = kMarchingTetsTable.num_triangles[c];
  }
  return {at::tensor(tri, at::kLong).view({16, 6}).to(device), at::tensor(num, at::kLong).to(device)};
}

TetTopology TopologyTwin(const at::Tensor& sdf, const TetGrid& grid) {
  c10::NoGradGuard no_grad;
  const at::Device device = sdf.device();
  const at::Tensor inside = sdf.detach().lt(0).to(at::kLong);  // [V] 1 inside, 0 outside

  // One output vertex per edge with a sign change, numbered in edge order.
  const at::Tensor crossing = inside.index_select(0, grid.edges.select(1, 0).contiguous()) !=
                              inside.index_select(0, grid.edges.select(1, 1).contiguous());
  TetTopology topo;
  topo.crossing_edges = at::nonzero(crossing).view({-1});
  const at::Tensor edge_to_vertex = crossing.to(at::kLong).cumsum(0) - 1;

  // Case per tet, then the table's triangles of the tets that have any.
  const int64_t num_tets = grid.tets.size(0);
  const at::Tensor bits = at::tensor(std::vector<int64_t>{1, 2, 4, 8}, at::kLong).to(device);
  const at::Tensor cases = (inside.index_select(0, grid.tets.reshape({-1})).view({num_tets, 4}) * bits).sum(1);
  at::Tensor table_tri, table_num;
  std::tie(table_tri, table_num) = TableTensors(device);
  const at::Tensor num = table_num.index_select(0, cases);
  const at::Tensor active = at::nonzero(num > 0).view({-1});
  const int64_t num_active = active.size(0);
  const at::Tensor local = table_tri.index_select(0, cases.index_select(0, active));  // [A,6]
  const at::Tensor edge_ids = grid.tet_edges.index_select(0, active).gather(1, local.clamp_min(0));
  const at::Tensor second_used = num.index_select(0, active) > 1;  // the first triangle always exists
  const at::Tensor used = at::stack({at::ones_like(second_used), second_used}, 1).view({-1});  // [2A]
  const at::Tensor tri_edges = edge_ids.view({2 * num_active, 3}).index_select(0, at::nonzero(used).view({-1}));
  topo.faces = edge_to_vertex.index_select(0, tri_edges.reshape({-1})).view({tri_edges.size(0), 3});
  return topo;
}

#ifdef PSD3D_WITH_CUDA
// positions may be undefined (topology only); when given, it is checked for NaN/inf in the same pass.
TetTopology TopologyCuda(const at::Tensor& sdf_in, const at::Tensor& positions_in, const TetGrid& grid,
                         const char* who) {
  const at::Tensor sdf = sdf_in.detach().contiguous();
  const at::Tensor positions = positions_in.defined() ? positions_in.detach().contiguous() : at::Tensor();
  const at::Tensor edges = grid.edges.contiguous(), tets = grid.tets.contiguous(),
                   tet_edges = grid.tet_edges.contiguous();
  const int64_t num_edges = edges.size(0), num_tets = tets.size(0);
  TORCH_CHECK(num_edges < std::numeric_limits<int32_t>::max() && 2 * num_tets < std::numeric_limits<int32_t>::max(),
              who, ": grid too large for int32 offsets");
  const auto i32 = sdf.options().dtype(at::kInt);
  at::Tensor edge_flags = at::empty({num_edges + 1}, i32), edge_offsets = at::empty({num_edges + 1}, i32);
  at::Tensor tet_counts = at::empty({num_tets + 1}, i32), tet_offsets = at::empty({num_tets + 1}, i32);
  at::Tensor tet_cases = at::empty({num_tets}, sdf.options().dtype(at::kByte));
  const size_t scratch_bytes = MarchingTetsScratchBytes(num_edges, num_tets);
  at::Tensor scratch = at::empty({static_cast<int64_t>(scratch_bytes)}, sdf.options().dtype(at::kByte));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  MarchingTetsTotals totals{};
  const char* err = nullptr;
  if (sdf.scalar_type() == at::kDouble) {
    err = MarchingTetsClassifyCuda(sdf.data_ptr<double>(), positions.defined() ? positions.data_ptr<double>() : nullptr,
                                   sdf.size(0), edges.data_ptr<int64_t>(), num_edges, tets.data_ptr<int64_t>(),
                                   num_tets, edge_flags.data_ptr<int32_t>(), edge_offsets.data_ptr<int32_t>(),
                                   tet_cases.data_ptr<uint8_t>(), tet_counts.data_ptr<int32_t>(),
                                   tet_offsets.data_ptr<int32_t>(), scratch.data_ptr(), scratch_bytes, &totals, stream);
  } else {
    err = MarchingTetsClassifyCuda(sdf.data_ptr<float>(), positions.defined() ? positions.data_ptr<float>() : nullptr,
                                   sdf.size(0), edges.data_ptr<int64_t>(), num_edges, tets.data_ptr<int64_t>(),
                                   num_tets, edge_flags.data_ptr<int32_t>(), edge_offsets.data_ptr<int32_t>(),
                                   tet_cases.data_ptr<uint8_t>(), tet_counts.data_ptr<int32_t>(),
                                   tet_offsets.data_ptr<int32_t>(), scratch.data_ptr(), scratch_bytes, &totals, stream);
  }
  TORCH_CHECK(err == nullptr, who, ": CUDA classify failed: ", err);
  ThrowIfNonFinite(totals.sdf_nan, totals.sdf_inf, who, "sdf");
  ThrowIfNonFinite(totals.positions_nan, totals.positions_inf, who, "positions");

  TetTopology topo;
  topo.crossing_edges = at::empty({totals.num_vertices}, sdf.options().dtype(at::kLong));
  topo.faces = at::empty({totals.num_faces, 3}, sdf.options().dtype(at::kLong));
  err = MarchingTetsEmitCuda(edge_offsets.data_ptr<int32_t>(), num_edges, tet_cases.data_ptr<uint8_t>(),
                             tet_offsets.data_ptr<int32_t>(), tet_edges.data_ptr<int64_t>(), num_tets,
                             topo.crossing_edges.data_ptr<int64_t>(), topo.faces.data_ptr<int64_t>(), stream);
  TORCH_CHECK(err == nullptr, who, ": CUDA emit failed: ", err);
  return topo;
}
#endif

Mesh Assemble(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid, const TetTopology& topo) {
  Mesh mesh;
  mesh.vertices = InterpolateCrossings(positions, sdf, grid, topo.crossing_edges);
  mesh.faces = topo.faces;
  return mesh;
}

}  // namespace

TetTopology MarchingTetsTopology(const at::Tensor& sdf, const TetGrid& grid) {
  const char* who = "MarchingTetsTopology";
  const at::Tensor s = CheckedSdf(sdf, grid, who);
#ifdef PSD3D_WITH_CUDA
  if (s.is_cuda()) return TopologyCuda(s, at::Tensor(), grid, who);
#endif
  CheckFinite(s, who, "sdf");
  return TopologyTwin(s, grid);
}

TetTopology MarchingTetsTopologyTwin(const at::Tensor& sdf, const TetGrid& grid) {
  const char* who = "MarchingTetsTopologyTwin";
  const at::Tensor s = CheckedSdf(sdf, grid, who);
  CheckFinite(s, who, "sdf");
  return TopologyTwin(s, grid);
}

at::Tensor InterpolateCrossings(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid,
                                const at::Tensor& crossing_edges) {
  const int64_t m = crossing_edges.size(0);
  const at::Tensor ends = grid.edges.index_select(0, crossing_edges).view({-1});  // [2M]: a0 b0 a1 b1 ...
  const at::Tensor p = positions.index_select(0, ends).view({m, 2, 3});
  const at::Tensor s = sdf.reshape({-1}).index_select(0, ends).view({m, 2, 1});
  const at::Tensor pa = p.select(1, 0), pb = p.select(1, 1), sa = s.select(1, 0), sb = s.select(1, 1);
  // One of sa, sb is < 0 and the other >= 0, so the denominator is never 0.
  return (pa * sb - pb * sa) / (sb - sa);
}

Mesh MarchingTets(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid) {
  const char* who = "MarchingTets";
  const at::Tensor s = CheckedSdf(sdf, grid, who);
  CheckPositions(positions, s, who);
#ifdef PSD3D_WITH_CUDA
  if (s.is_cuda()) return Assemble(positions, s, grid, TopologyCuda(s, positions, grid, who));
#endif
  CheckFinite(s, who, "sdf");
  CheckFinite(positions, who, "positions");
  return Assemble(positions, s, grid, TopologyTwin(s, grid));
}

Mesh MarchingTetsTwin(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid) {
  const char* who = "MarchingTetsTwin";
  const at::Tensor s = CheckedSdf(sdf, grid, who);
  CheckPositions(positions, s, who);
  CheckFinite(s, who, "sdf");
  CheckFinite(positions, who, "positions");
  return Assemble(positions, s, grid, TopologyTwin(s, grid));
}

}  // namespace psd3d
