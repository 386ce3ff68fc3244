#include "worker/mesh/marching_tets.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>
#include <vector>

#include "worker/mesh/marching_tets_cuda.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>
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
// Topology and, with `with_vertices`, the crossing vertices on CUDA (no gradient). positions may be
// undefined (topology only); when given, it is checked for NaN/inf in the classify pass.
struct CudaMarch {
  TetTopology topo;
  at::Tensor vertices;  // [M,3] in positions' dtype; undefined unless with_vertices
};

template <typename T>
CudaMarch MarchCudaTyped(const at::Tensor& sdf, const at::Tensor& positions, const TetGrid& grid, const char* who,
                         bool with_vertices) {
  // MakeTetGrid's grid needs no tables (the grid kernels compute the ids); a hand-built one passes its own.
  const bool structured = IsKuhnGrid(grid);
  const int64_t n = grid.resolution;
  const at::Tensor tets = structured ? at::Tensor() : grid.tets.contiguous();
  const at::Tensor tet_edges = structured ? at::Tensor() : grid.tet_edges.contiguous();
  const int64_t num_edges = grid.edges.size(0), num_tets = grid.tets.size(0);
  // int32 offsets and totals: the scan's length and its largest value (M ≤ E crossing edges plus K ≤ 2
  // triangles per tet) must fit.
  const int64_t scan_length = structured ? grid.vertices.size(0) + n * n * n + 2 : num_edges + num_tets + 2;
  TORCH_CHECK(std::max(scan_length, num_edges + 2 * num_tets + 2) < std::numeric_limits<int32_t>::max(), who,
              ": grid too large for int32 offsets");
  // One workspace for every intermediate (counts, their scan, cases or masks, the scan's storage).
  const size_t workspace_bytes =
      structured ? MarchingTetsGridWorkspaceBytes(n) : MarchingTetsWorkspaceBytes(num_edges, num_tets);
  const at::Tensor workspace = at::empty({static_cast<int64_t>(workspace_bytes)}, sdf.options().dtype(at::kByte));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const T* p = positions.defined() ? positions.data_ptr<T>() : nullptr;
  MarchingTetsTotals totals{};
  const char* err =
      structured ? MarchingTetsGridClassifyCuda(sdf.data_ptr<T>(), p, n, workspace.data_ptr(), &totals, stream)
                 : MarchingTetsClassifyCuda(sdf.data_ptr<T>(), p, sdf.size(0), tets.data_ptr<int64_t>(),
                                            tet_edges.data_ptr<int64_t>(), num_tets, num_edges, workspace.data_ptr(),
                                            &totals, stream);
  TORCH_CHECK(err == nullptr, who, ": CUDA classify failed: ", err);
  ThrowIfNonFinite(totals.sdf_nan, totals.sdf_inf, who, "sdf");
  ThrowIfNonFinite(totals.positions_nan, totals.positions_inf, who, "positions");

  CudaMarch out;
  // Crossing edges and faces share one allocation (the host's time between the synchronization and the
  // emit launch is on the critical path).
  const int64_t m = totals.num_vertices, k = totals.num_faces;
  const at::Tensor ids = at::empty({m + 3 * k}, sdf.options().dtype(at::kLong));
  out.topo.crossing_edges = ids.narrow(0, 0, m);
  out.topo.faces = ids.narrow(0, m, 3 * k).view({k, 3});
  if (with_vertices) out.vertices = at::empty({totals.num_vertices, 3}, positions.options());
  int64_t* crossing = out.topo.crossing_edges.data_ptr<int64_t>();
  int64_t* faces = out.topo.faces.data_ptr<int64_t>();
  const T* vp = with_vertices ? p : nullptr;
  const T* vs = with_vertices ? sdf.data_ptr<T>() : nullptr;
  T* vertices = with_vertices ? out.vertices.data_ptr<T>() : nullptr;
  err = structured ? MarchingTetsGridEmitCuda(workspace.data_ptr(), totals, n, crossing, faces, vp, vs, vertices, stream)
                   : MarchingTetsEmitCuda(workspace.data_ptr(), totals, num_edges, tets.data_ptr<int64_t>(),
                                          tet_edges.data_ptr<int64_t>(), num_tets, crossing, faces, vp, vs, vertices,
                                          stream);
  TORCH_CHECK(err == nullptr, who, ": CUDA emit failed: ", err);
  return out;
}

CudaMarch MarchCuda(const at::Tensor& sdf_in, const at::Tensor& positions_in, const TetGrid& grid, const char* who,
                    bool with_vertices) {
  // Only the values are read: no detach needed.
  const at::Tensor sdf = sdf_in.contiguous();
  const at::Tensor positions = positions_in.defined() ? positions_in.contiguous() : at::Tensor();
  return sdf.scalar_type() == at::kDouble ? MarchCudaTyped<double>(sdf, positions, grid, who, with_vertices)
                                          : MarchCudaTyped<float>(sdf, positions, grid, who, with_vertices);
}

// The whole marching tets on CUDA as one autograd node: topology and vertices forward (MarchCuda), and
// a one-kernel backward into the positions and the sdf. Inputs: positions [V,3], sdf [V] (same dtype),
// the grid and the caller's name; outputs: vertices [M,3], faces [K,3] and crossing edges [M] (the last
// two without gradient).
class MarchingTetsFunction : public torch::autograd::Function<MarchingTetsFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& positions,
                                                const at::Tensor& sdf, const TetGrid* grid, const char* who) {
    CudaMarch m = MarchCuda(sdf, positions, *grid, who, /*with_vertices=*/true);
    ctx->save_for_backward({positions, sdf, grid->edges, m.topo.crossing_edges});
    ctx->mark_non_differentiable({m.topo.faces, m.topo.crossing_edges});
    ctx->set_materialize_grads(false);
    return {m.vertices, m.topo.faces, m.topo.crossing_edges};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const at::Tensor positions = saved[0].contiguous(), sdf = saved[1].contiguous();
    const at::Tensor edges = saved[2].contiguous(), crossing = saved[3];
    const at::Tensor g = grads[0].to(positions.scalar_type()).contiguous();
    const int64_t v = sdf.size(0);
    // Both gradients in one zero-filled buffer: positions' [V,3] rows, then sdf's [V].
    const bool want_p = ctx->needs_input_grad(0), want_s = ctx->needs_input_grad(1);
    const at::Tensor buffer = at::zeros({(want_p ? 3 * v : 0) + (want_s ? v : 0)}, positions.options());
    at::Tensor grad_p = want_p ? buffer.narrow(0, 0, 3 * v).view({v, 3}) : at::Tensor();
    at::Tensor grad_s = want_s ? buffer.narrow(0, want_p ? 3 * v : 0, v) : at::Tensor();
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    const char* err = nullptr;
    if (positions.scalar_type() == at::kDouble) {
      err = MarchingTetsVertexBackwardCuda(edges.data_ptr<int64_t>(), crossing.data_ptr<int64_t>(), crossing.size(0),
                                           positions.data_ptr<double>(), sdf.data_ptr<double>(), g.data_ptr<double>(),
                                           want_p ? grad_p.data_ptr<double>() : nullptr,
                                           want_s ? grad_s.data_ptr<double>() : nullptr, stream);
    } else {
      err = MarchingTetsVertexBackwardCuda(edges.data_ptr<int64_t>(), crossing.data_ptr<int64_t>(), crossing.size(0),
                                           positions.data_ptr<float>(), sdf.data_ptr<float>(), g.data_ptr<float>(),
                                           want_p ? grad_p.data_ptr<float>() : nullptr,
                                           want_s ? grad_s.data_ptr<float>() : nullptr, stream);
    }
    TORCH_CHECK(err == nullptr, "MarchingTets backward: CUDA kernel failed: ", err);
    return {grad_p, grad_s, at::Tensor(), at::Tensor()};
  }
};

// MarchingTets on CUDA: the autograd node when a gradient is wanted, else a plain call.
Mesh MarchingTetsCuda(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid, const char* who) {
  const c10::cuda::CUDAGuard guard(sdf.device());
  Mesh mesh;
  if (c10::GradMode::is_enabled() && (positions.requires_grad() || sdf.requires_grad())) {
    const auto out = MarchingTetsFunction::apply(positions, sdf, &grid, who);
    mesh.vertices = out[0];
    mesh.faces = out[1];
  } else {
    CudaMarch m = MarchCuda(sdf, positions, grid, who, /*with_vertices=*/true);
    mesh.vertices = m.vertices;
    mesh.faces = m.topo.faces;
  }
  return mesh;
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
  if (s.is_cuda()) {
    const c10::cuda::CUDAGuard guard(s.device());
    return MarchCuda(s, at::Tensor(), grid, who, /*with_vertices=*/false).topo;
  }
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
  if (s.is_cuda()) return MarchingTetsCuda(positions, s, grid, who);
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
