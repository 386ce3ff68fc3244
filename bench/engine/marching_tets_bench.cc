// Marching tets on a noisy sphere: the CUDA topology kernels (+ LibTorch interpolation) vs the pure-LibTorch
// twin on the same device. N = 64 (≈ threestudio's 128_tets grid) on CUDA, N = 16 on CPU.
#include <ATen/ATen.h>

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
  const double tets = static_cast<double>(g.num_tets());
  // Must read: sdf, tets (int64 ×4), the tet→edge table (int64 ×6); must write: faces and vertices.
  const double read = g.num_vertices() * 4.0 + tets * (4 + 6) * 8.0;
  const double written = mesh.num_faces() * 3 * 8.0 + mesh.num_vertices() * 3 * 4.0;
  const std::string work = "N=" + std::to_string(n) + ", " + std::to_string(mesh.num_faces()) + " tris";

  Row full;
  full.name = "marching tets N=" + std::to_string(n);
  full.work = work;
  full.kernel_ms = TimeMs([&] { MarchingTets(g.vertices, sdf, g); }, device);
  full.twin_ms = TimeMs([&] { MarchingTetsTwin(g.vertices, sdf, g); }, device);
  full.min_bytes = read + written;
  full.items = tets;
  full.item_unit = "tets";

  Row topo = full;
  topo.name = "marching tets topology";
  topo.kernel_ms = TimeMs([&] { MarchingTetsTopology(sdf, g); }, device);
  topo.twin_ms = TimeMs([&] { MarchingTetsTopologyTwin(sdf, g); }, device);
  topo.min_bytes = read + mesh.num_faces() * 3 * 8.0 + mesh.num_vertices() * 8.0;  // faces + crossing edge ids
  return {full, topo};
}

PSD3D_ENGINE_BENCH("marching tets", MarchingTetsBench);

}  // namespace
}  // namespace psd3d::bench
