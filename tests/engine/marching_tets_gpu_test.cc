// CUDA marching tets vs the LibTorch twin (on CUDA and on CPU) on fresh random inputs; skipped without CUDA.
// The kernel emits the same order as the twin, so topology must match exactly, not just up to ordering.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <string>
#include <vector>

#include "worker/mesh/dmtet.h"
#include "worker/mesh/marching_tets.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/mesh/tet_grid.h"

namespace psd3d {
namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA not available"

const at::Device kCuda(at::kCUDA);

// Random sdfs of several kinds on grid vertices p [V,3] (CUDA).
std::vector<std::pair<std::string, at::Tensor>> RandomSdfs(const at::Tensor& p) {
  const int64_t v = p.size(0);
  const auto opts = p.options();
  return {
      {"gaussian", at::randn({v}, opts)},
      {"quantized with exact zeros", at::randint(-2, 3, {v}, opts)},
      {"noisy sphere", p.norm(2, 1) - 0.6 + 0.05 * at::randn({v}, opts)},
      {"thin shell", (p.norm(2, 1) - 0.5).abs() - 0.01},
      {"all outside", at::rand({v}, opts) + 0.1},
      {"all inside", -at::rand({v}, opts) - 0.1},
      {"all zero", at::zeros({v}, opts)},
  };
}

void ExpectSameTopology(const TetTopology& a, const TetTopology& b, const std::string& what) {
  ASSERT_EQ(a.crossing_edges.sizes(), b.crossing_edges.sizes()) << what;
  ASSERT_EQ(a.faces.sizes(), b.faces.sizes()) << what;
  EXPECT_TRUE(at::equal(a.crossing_edges.cpu(), b.crossing_edges.cpu())) << what;
  EXPECT_TRUE(at::equal(a.faces.cpu(), b.faces.cpu())) << what;
}

TEST(MarchingTetsGpu, GridOnCudaEqualsGridOnCpu) {
  SKIP_WITHOUT_CUDA();
  for (int64_t n : {1, 7, 32}) {
    TetGrid a = MakeTetGrid(n, 1.0, kCuda), b = MakeTetGrid(n);
    EXPECT_TRUE(at::equal(a.vertices.cpu(), b.vertices)) << n;
    EXPECT_TRUE(at::equal(a.tets.cpu(), b.tets)) << n;
    EXPECT_TRUE(at::equal(a.edges.cpu(), b.edges)) << n;
    EXPECT_TRUE(at::equal(a.tet_edges.cpu(), b.tet_edges)) << n;
  }
}

TEST(MarchingTetsGpu, TopologyEqualsTwinOnRandomSdfs) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(11);
  for (int64_t n : {1, 2, 5, 24, 64}) {
    const TetGrid g = MakeTetGrid(n, 1.0, kCuda);
    const TetGrid g_cpu = g.to(at::kCPU);
    for (const auto& [name, sdf32] : RandomSdfs(g.vertices)) {
      for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
        const at::Tensor sdf = sdf32.to(dtype);
        const std::string what = name + " n=" + std::to_string(n) + (dtype == at::kDouble ? " f64" : " f32");
        const TetTopology kernel = MarchingTetsTopology(sdf, g);
        EXPECT_TRUE(kernel.faces.is_cuda() && kernel.crossing_edges.is_cuda()) << what;
        ExpectSameTopology(kernel, MarchingTetsTopologyTwin(sdf, g), what + " vs CUDA twin");
        ExpectSameTopology(kernel, MarchingTetsTopologyTwin(sdf.cpu(), g_cpu), what + " vs CPU twin");
        // Faces index crossing edges in range and never repeat a vertex within a face.
        if (kernel.faces.numel() > 0) {
          EXPECT_GE(kernel.faces.min().item<int64_t>(), 0) << what;
          EXPECT_LT(kernel.faces.max().item<int64_t>(), kernel.crossing_edges.size(0)) << what;
        }
      }
    }
  }
}

TEST(MarchingTetsGpu, NonContiguousAndColumnSdfs) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(12);
  const TetGrid g = MakeTetGrid(16, 1.0, kCuda);
  const at::Tensor wide = at::randn({g.num_vertices(), 2}, g.vertices.options());
  const at::Tensor column = wide.narrow(1, 1, 1);  // [V,1], stride 2
  ExpectSameTopology(MarchingTetsTopology(column, g), MarchingTetsTopologyTwin(column.contiguous(), g), "column");
  ExpectSameTopology(MarchingTetsTopology(wide.select(1, 0), g),
                     MarchingTetsTopologyTwin(wide.select(1, 0).contiguous(), g), "strided [V]");
}

TEST(MarchingTetsGpu, VerticesAndGradientsEqualTheTwin) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(13);
  const TetGrid g = MakeTetGrid(32, 1.0, kCuda);
  const auto opts = g.vertices.options();
  const at::Tensor sdf0 = g.vertices.norm(2, 1) - 0.55 + 0.03 * at::randn({g.num_vertices()}, opts);
  const at::Tensor deform0 = 0.3 * at::randn({g.num_vertices(), 3}, opts);
  auto run = [&](bool twin, at::Tensor* vertices) {
    at::Tensor sdf = sdf0.clone().requires_grad_(true), deform = deform0.clone().requires_grad_(true);
    const at::Tensor positions = g.vertices + at::tanh(deform) * (0.5 * g.spacing());
    Mesh m = twin ? MarchingTetsTwin(positions, sdf, g) : MarchingTets(positions, sdf, g);
    *vertices = m.vertices.detach();
    at::manual_seed(99);  // the same upstream gradient for both
    const at::Tensor w = at::randn(m.vertices.sizes(), opts);
    const at::Tensor loss = (m.vertices * w).sum() + TotalArea(m) + NormalConsistencyLoss(m);
    auto grads = torch::autograd::grad({loss}, {sdf, deform});
    return std::make_tuple(m.faces, grads[0], grads[1]);
  };
  at::Tensor va, vb;
  auto [fa, gsa, gda] = run(false, &va);
  auto [fb, gsb, gdb] = run(true, &vb);
  ASSERT_GT(fa.size(0), 1000);
  EXPECT_TRUE(at::equal(fa, fb));
  EXPECT_TRUE(at::equal(va, vb));
  EXPECT_TRUE(at::isfinite(gsa).all().item<bool>());
  // Same graph on the same inputs; CUDA's atomic index_add sums in a run-dependent order, so sums of
  // many terms differ by a few ulps of their magnitude (seen: 3.8e-6).
  EXPECT_TRUE(at::allclose(gsa, gsb, 1e-4, 2e-5)) << (gsa - gsb).abs().max();
  EXPECT_TRUE(at::allclose(gda, gdb, 1e-4, 2e-5)) << (gda - gdb).abs().max();
  EXPECT_GT(gsa.abs().sum().item<float>(), 0);
  EXPECT_GT(gda.abs().sum().item<float>(), 0);
}

TEST(MarchingTetsGpu, DMTetSphereOnCudaIsClosedAndMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  DMTetOptions o;
  o.resolution = 48;
  DMTet gpu(o, kCuda), cpu(o);
  auto sphere = [](const at::Tensor& p) { return p.norm(2, 1) - 0.6; };
  ASSERT_TRUE(gpu.InitFromSdf(sphere).ok());
  ASSERT_TRUE(cpu.InitFromSdf(sphere).ok());
  Mesh a = gpu.Extract(), b = cpu.Extract();
  EXPECT_TRUE(a.vertices.is_cuda());
  EXPECT_TRUE(at::equal(a.faces.cpu(), b.faces));
  EXPECT_TRUE(at::allclose(a.vertices.cpu(), b.vertices, 1e-5, 1e-6));
  std::string why;
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(a, &why)) << why;
  EXPECT_NEAR(TotalArea(a).item<float>(), TotalArea(b).item<float>(), 1e-3);
  // Mesh ops run on CUDA tensors and agree with CPU.
  EXPECT_TRUE(at::allclose(VertexNormals(a).cpu(), VertexNormals(b), 1e-4, 1e-5));
  EXPECT_NEAR(NormalConsistencyLoss(a).item<float>(), NormalConsistencyLoss(b).item<float>(), 1e-5);
  EXPECT_NEAR(LaplacianLoss(a).item<float>(), LaplacianLoss(b).item<float>(), 1e-6);
  EXPECT_EQ(ConnectedComponents(a).count, 1);
  EXPECT_EQ(RemoveFloaters(a, 0.5).num_faces(), a.num_faces());
}

// The CUDA path counts non-finite values in its classify kernel; the messages match the CPU path's.
TEST(MarchingTetsGpu, NonFiniteInputsAreRejectedOnCuda) {
  SKIP_WITHOUT_CUDA();
  const TetGrid g = MakeTetGrid(4, 1.0, kCuda);
  const at::Tensor sdf = g.vertices.norm(2, 1) - 0.5;
  at::Tensor bad = sdf.clone();
  bad[7].fill_(NAN);
  bad[8].fill_(NAN);
  bad[100].fill_(-INFINITY);
  for (bool topology_only : {true, false}) {
    try {
      if (topology_only) {
        MarchingTetsTopology(bad, g);
      } else {
        MarchingTets(g.vertices, bad, g);
      }
      FAIL() << "NaN sdf accepted";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("sdf has 2 NaN and 1 infinite values"), std::string::npos) << e.what();
    }
  }
  at::Tensor positions = g.vertices.clone();
  positions[3][2].fill_(INFINITY);
  try {
    MarchingTets(positions, sdf, g);
    FAIL() << "infinite positions accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("positions has 0 NaN and 1 infinite values"), std::string::npos) << e.what();
  }
  EXPECT_THROW(MarchingTetsTopology(sdf.cpu(), g), c10::Error);  // device mismatch
  // A failed call leaves the stream usable.
  EXPECT_GT(MarchingTets(g.vertices, sdf, g).num_faces(), 0);
}

}  // namespace
}  // namespace psd3d
