// Marching tets on a noisy sphere: the CUDA kernels vs the pure-LibTorch twin on the same device. N = 64
// (≈ threestudio's 128_tets grid) on CUDA, N = 16 on CPU. "marching tets" = the whole op without
// gradient (topology + vertices), "topology" = crossing edges and faces only, "fwd+bwd" = the op with
// gradients w.r.t. the positions and the sdf from a given upstream gradient of the vertices (as DMTet
// trains).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <string>
#include <vector>

#include "bench/engine/bench_harness.h"
#include "worker/mesh/marching_tets.h"
#include "worker/mesh/tet_grid.h"

namespace psd3d::bench {
namespace {

std::vector<Row> MarchingTetsBench(const at::Device& device) {
  const int64_t n = device.is_cuda() ? 64 : 16;
  const TetGrid g = MakeTetGrid(n, 1.0, device);
  at::manual_seed(0);
  const at::Tensor sdf =
      g.vertices.norm(2, 1) - 0.6 + 0.5 * g.spacing() * at::randn({g.num_vertices()}, g.vertices.options());
  const Mesh mesh = MarchingTets(g.vertices, sdf, g);
  const double tets = static_cast<double>(g.num_tets()), v = static_cast<double>(g.num_vertices());
  const double k = static_cast<double>(mesh.num_faces()), m = static_cast<double>(mesh.num_vertices());
  // Bytes any implementation must move at least. MakeTetGrid's tets and edges follow from its layout
  // (kuhn_grid.h), so no ids are read. Topology: read the sdf; write faces and the crossing edge ids.
  // Vertices: read each crossing edge's two position rows, write [M,3].
  const double topo_bytes = v * 4 + k * 24 + m * 8;
  const double full_bytes = topo_bytes + m * 24 + m * 12;
  const std::string work = "N=" + std::to_string(n) + ", " + std::to_string(mesh.num_faces()) + " tris";

  Row full;
  full.name = "marching tets N=" + std::to_string(n);
  full.work = work;
  {
    const c10::NoGradGuard no_grad;
    full.kernel_ms = TimeMs([&] { MarchingTets(g.vertices, sdf, g); }, device, 3, 10, &full.kernel_host_ms);
    full.twin_ms = TimeMs([&] { MarchingTetsTwin(g.vertices, sdf, g); }, device);
  }
  full.min_bytes = full_bytes;
  full.items = tets;
  full.item_unit = "tets";
  // The output's size depends on the data: one device→host round trip between a counting kernel and
  // an emitting one, at least.
  full.launches = 2;
  full.host_syncs = 1;

  Row topo = full;
  topo.name = "marching tets topology";
  topo.kernel_ms = TimeMs([&] { MarchingTetsTopology(sdf, g); }, device, 3, 10, &topo.kernel_host_ms);
  topo.twin_ms = TimeMs([&] { MarchingTetsTopologyTwin(sdf, g); }, device);
  topo.min_bytes = topo_bytes;

  const at::Tensor positions = g.vertices.clone().requires_grad_(true), sdf_g = sdf.clone().requires_grad_(true);
  const at::Tensor up = at::randn({mesh.num_vertices(), 3}, g.vertices.options());
  auto fwd_bwd = [&](bool kernel) {
    Mesh out = kernel ? MarchingTets(positions, sdf_g, g) : MarchingTetsTwin(positions, sdf_g, g);
    torch::autograd::grad({out.vertices}, {positions, sdf_g}, {up});
  };
  Row fb = full;
  fb.name = "marching tets fwd+bwd";
  fb.kernel_ms = TimeMs([&] { fwd_bwd(true); }, device, 3, 10, &fb.kernel_host_ms);
  fb.twin_ms = TimeMs([&] { fwd_bwd(false); }, device);
  // Backward: read the upstream gradient, the crossing edges and their ends' positions and sdf (the
  // ends could be computed from the edge ids on this grid, so the bound leaves out the edge rows the
  // kernel reads); write the position and sdf gradients.
  fb.launches = 4;  // + the gradient's zero fill and scatter
  fb.passes = 1;
  fb.min_bytes = full_bytes + m * (12 + 8 + 24 + 8) + v * 16;
  return {full, topo, fb};
}

PSD3D_ENGINE_BENCH("marching tets", MarchingTetsBench);

}  // namespace
}  // namespace psd3d::bench
