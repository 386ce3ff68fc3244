// CUDA marching tets vs the LibTorch twin (on CUDA and on CPU) on fresh random inputs; skipped without CUDA.
// The kernel emits the same order as the twin, so topology must match exactly, not just up to ordering.
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <algorithm>
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

// `g` as a hand-built grid (resolution 0), so the CUDA marching tets takes its general, table-reading path.
TetGrid Tabled(const TetGrid& g) {
  TetGrid t = g;
  t.resolution = 0;
  return t;
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
        // The same grid without its resolution runs the general kernels, which read the tables.
        ExpectSameTopology(MarchingTetsTopology(sdf, Tabled(g)), kernel, what + " general kernels");
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

// Max-norm relative error; NaN or infinity never passes.
double RelErr(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.cpu().to(at::kDouble), y = b.cpu().to(at::kDouble);
  if (x.sizes() != y.sizes() || !at::isfinite(x).all().item<bool>() || !at::isfinite(y).all().item<bool>()) return 1e30;
  return ((x - y).abs().max() / (y.abs().max() + 1e-30)).item<double>();
}

struct MarchResult {
  at::Tensor vertices, faces, grad_sdf, grad_deform;
};

// Marching tets of sdf0 on the grid deformed by deform0 (both CUDA), in `dtype`, and the gradients of a
// loss through the mesh (a fixed random projection, the area and the normal consistency) w.r.t. the
// sdf and the deformation. `grad_sdf`/`grad_deform` select which inputs take a gradient; `general` runs the
// kernel on the grid as if hand-built.
MarchResult March(bool twin, const TetGrid& g, const at::Tensor& sdf0, const at::Tensor& deform0, at::ScalarType dtype,
                  bool grad_sdf = true, bool grad_deform = true, bool general = false) {
  at::Tensor sdf = sdf0.to(dtype).clone().requires_grad_(grad_sdf);
  at::Tensor deform = deform0.to(dtype).clone().requires_grad_(grad_deform);
  const at::Tensor positions = g.vertices.to(dtype) + at::tanh(deform) * (0.5 * g.spacing());
  Mesh m = twin ? MarchingTetsTwin(positions, sdf, g) : MarchingTets(positions, sdf, general ? Tabled(g) : g);
  const at::Tensor w = at::randn(m.vertices.sizes(), at::detail::createCPUGenerator(99), at::kDouble)
                           .to(m.vertices.device())
                           .to(dtype);  // the same upstream gradient for every run
  const at::Tensor loss = (m.vertices * w).sum() + TotalArea(m) + NormalConsistencyLoss(m);
  std::vector<at::Tensor> inputs;
  if (grad_sdf) inputs.push_back(sdf);
  if (grad_deform) inputs.push_back(deform);
  auto grads = torch::autograd::grad({loss}, inputs);
  MarchResult r{m.vertices.detach(), m.faces, {}, {}};
  if (grad_sdf) r.grad_sdf = grads[0];
  if (grad_deform) r.grad_deform = grads.back();
  return r;
}

TEST(MarchingTetsGpu, VerticesAndGradientsEqualTheTwin) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(13);
  const TetGrid g = MakeTetGrid(32, 1.0, kCuda);
  const auto opts = g.vertices.options();
  const at::Tensor sdf0 = g.vertices.norm(2, 1) - 0.55 + 0.03 * at::randn({g.num_vertices()}, opts);
  const at::Tensor deform0 = 0.3 * at::randn({g.num_vertices(), 3}, opts);
  // float64: the kernel's hand-written backward against autograd through the twin's tensor ops.
  const MarchResult k64 = March(false, g, sdf0, deform0, at::kDouble), t64 = March(true, g, sdf0, deform0, at::kDouble);
  ASSERT_GT(k64.faces.size(0), 1000);
  EXPECT_TRUE(at::equal(k64.faces, t64.faces));
  EXPECT_TRUE(at::equal(k64.vertices, t64.vertices));  // the same IEEE operations
  EXPECT_LT(RelErr(k64.grad_sdf, t64.grad_sdf), 1e-10);
  EXPECT_LT(RelErr(k64.grad_deform, t64.grad_deform), 1e-10);
  const MarchResult general = March(false, g, sdf0, deform0, at::kDouble, true, true, /*general=*/true);
  EXPECT_TRUE(at::equal(general.faces, k64.faces));
  EXPECT_TRUE(at::equal(general.vertices, k64.vertices));
  // The backward's atomics add in no fixed order, so gradients agree to rounding, not bit for bit.
  EXPECT_LT(RelErr(general.grad_sdf, t64.grad_sdf), 1e-10);
  EXPECT_LT(RelErr(general.grad_deform, t64.grad_deform), 1e-10);
  // float32, against the float64 twin: the kernel's gradients are no less accurate than the twin's.
  const MarchResult k32 = March(false, g, sdf0, deform0, at::kFloat), t32 = March(true, g, sdf0, deform0, at::kFloat);
  EXPECT_TRUE(at::equal(k32.faces, t32.faces));
  EXPECT_TRUE(at::equal(k32.vertices, t32.vertices));
  EXPECT_TRUE(at::equal(k32.faces, k64.faces));
  const double twin_sdf = RelErr(t32.grad_sdf, t64.grad_sdf), twin_deform = RelErr(t32.grad_deform, t64.grad_deform);
  EXPECT_LT(RelErr(k32.grad_sdf, t64.grad_sdf), std::max(1e-5, 2 * twin_sdf)) << "twin f32: " << twin_sdf;
  EXPECT_LT(RelErr(k32.grad_deform, t64.grad_deform), std::max(1e-5, 2 * twin_deform)) << "twin f32: " << twin_deform;
  EXPECT_GT(k32.grad_sdf.abs().sum().item<float>(), 0);
  EXPECT_GT(k32.grad_deform.abs().sum().item<float>(), 0);
}

// Gradients for one input only, and the no-gradient path giving the same mesh.
TEST(MarchingTetsGpu, PartialGradientsAndNoGradPath) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(14);
  const TetGrid g = MakeTetGrid(20, 1.0, kCuda);
  const auto opts = g.vertices.options();
  const at::Tensor sdf0 = g.vertices.norm(2, 1) - 0.5 + 0.05 * at::randn({g.num_vertices()}, opts);
  const at::Tensor deform0 = 0.3 * at::randn({g.num_vertices(), 3}, opts);
  for (bool sdf_only : {true, false}) {
    const MarchResult k = March(false, g, sdf0, deform0, at::kDouble, sdf_only, !sdf_only);
    const MarchResult t = March(true, g, sdf0, deform0, at::kDouble, sdf_only, !sdf_only);
    const at::Tensor& gk = sdf_only ? k.grad_sdf : k.grad_deform;
    const at::Tensor& gt = sdf_only ? t.grad_sdf : t.grad_deform;
    EXPECT_LT(RelErr(gk, gt), 1e-10) << (sdf_only ? "sdf only" : "deformation only");
  }
  const MarchResult with_grad = March(false, g, sdf0, deform0, at::kFloat);
  const c10::NoGradGuard no_grad;
  const at::Tensor positions = g.vertices + at::tanh(deform0) * (0.5 * g.spacing());
  const Mesh plain = MarchingTets(positions, sdf0, g);
  EXPECT_FALSE(plain.vertices.requires_grad());
  EXPECT_TRUE(at::equal(plain.faces, with_grad.faces));
  EXPECT_TRUE(at::equal(plain.vertices, with_grad.vertices));
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
