// CUDA hash-grid kernels against the CPU twin (the reference) on fresh random inputs: forward values
// and table gradients, for several configs (level counts that are not multiples of the kernel's level
// group, rows whose width is not a multiple of 4 floats), point counts that are not multiples of the
// block size, points exactly at 0 and 1, out-of-range and NaN coordinates, zero gradient rows,
// coherent points (warp-summed atomics), and a table not aligned for paired loads. Skips without CUDA.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/fields/hash_grid.h"

namespace psd3d {
namespace {

class HashGridGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA not available";
    if (!HashGridHasCudaKernel()) GTEST_SKIP() << "built without CUDA kernels (PSD3D_WITH_CUDA off)";
  }
};

HashGridConfig Config(int levels, int features, int log2_size, int base, double scale) {
  HashGridConfig c;
  c.levels = levels;
  c.features_per_level = features;
  c.log2_table_size = log2_size;
  c.base_resolution = base;
  c.per_level_scale = scale;
  return c;
}

// max |actual − expected| ≤ rtol · max |expected|, with every value finite (so NaN never passes: a NaN
// error compares false).
void ExpectClose(const at::Tensor& actual, const at::Tensor& expected, double rtol, const std::string& what) {
  const at::Tensor a = actual.detach().cpu().to(at::kDouble), e = expected.detach().cpu().to(at::kDouble);
  ASSERT_EQ(a.sizes(), e.sizes()) << what;
  if (e.numel() == 0) return;
  ASSERT_TRUE(at::isfinite(a).all().item<bool>()) << what << ": non-finite values from the kernel";
  ASSERT_TRUE(at::isfinite(e).all().item<bool>()) << what << ": non-finite values from the twin";
  const double scale = e.abs().max().item<double>();
  const double err = (a - e).abs().max().item<double>();
  EXPECT_TRUE(err <= rtol * std::max(scale, 1e-30)) << what << ": max error " << err << " vs scale " << scale;
}

// Random points with the edge cases in front: the corners 0 and 1, mixtures, and a level-0 vertex.
at::Tensor Points(int64_t n, at::Generator& gen, float vertex) {
  at::Tensor x = at::rand({n, 3}, gen);
  const std::vector<std::vector<float>> edge = {{0, 0, 0}, {1, 1, 1}, {0, 1, 0.5f}, {1, 0, 1}, {vertex, vertex, 1}};
  for (int64_t i = 0; i < std::min<int64_t>(n, static_cast<int64_t>(edge.size())); ++i) {
    x[i] = at::tensor(edge[i]);
  }
  return x;
}

struct Result {
  at::Tensor y;
  at::Tensor grad_table;
};

Result EncodeWithGrad(at::Tensor (*encode)(const at::Tensor&, const at::Tensor&, const HashGridConfig&), const at::Tensor& x,
           const at::Tensor& table, const at::Tensor& dy, const HashGridConfig& config) {
  at::Tensor t = table.detach().clone().requires_grad_(true);
  at::Tensor y = encode(x, t, config);
  at::Tensor g = torch::autograd::grad({y}, {t}, {dy})[0];
  return {y.detach(), g};
}

struct Case {
  HashGridConfig config;
  int64_t n;
};

TEST_F(HashGridGpu, KernelMatchesCpuTwinForwardAndBackward) {
  const std::vector<Case> cases = {
      {HashGridConfig{}, 100003},               // the default: 5 dense + 11 hashed levels, n % 256 ≠ 0
      {Config(8, 1, 14, 8, 1.5), 1},            // F=1, a single point
      {Config(4, 4, 12, 16, 2.0), 257},         // F=4
      {Config(3, 8, 10, 4, 3.0), 1000},         // F=8, tiny tables (many collisions)
      {Config(2, 2, 19, 16, 2.0), 4096 + 7},    // all levels dense, a partial level group
      {Config(3, 2, 12, 4, 2.0), 999},          // output rows of 6 floats (no vector stores)
      {Config(32, 2, 15, 2, 1.3), 513},         // the most levels
  };
  at::Generator gen = at::detail::createCPUGenerator(11);
  const at::Device cuda(at::kCUDA);
  for (const Case& c : cases) {
    const HashGridLayout layout = ComputeHashGridLayout(c.config);
    const std::string name = "L=" + std::to_string(c.config.levels) + " F=" + std::to_string(layout.features) +
                             " n=" + std::to_string(c.n);
    const at::Tensor x = Points(c.n, gen, (3 - 0.5f) / layout.levels[0].scale);
    const at::Tensor table = at::rand({layout.total_params, layout.features}, gen) * 2 - 1;
    at::Tensor dy = at::randn({c.n, layout.output_dim()}, gen);
    dy.index_fill_(0, at::arange(0, c.n, 5), 0.0);  // rows the backward kernels skip
    const Result cpu = EncodeWithGrad(&HashGridEncode, x, table, dy, c.config);
    const Result kernel = EncodeWithGrad(&HashGridEncode, x.to(cuda), table.to(cuda), dy.to(cuda), c.config);
    const Result gpu_twin = EncodeWithGrad(&HashGridEncodeTwin, x.to(cuda), table.to(cuda), dy.to(cuda), c.config);
    ASSERT_TRUE(kernel.y.is_cuda());
    ExpectClose(kernel.y, cpu.y, 1e-5, name + " forward");
    ExpectClose(kernel.grad_table, cpu.grad_table, 1e-4, name + " table gradient");
    ExpectClose(gpu_twin.y, cpu.y, 1e-5, name + " CUDA twin forward");
    ExpectClose(gpu_twin.grad_table, cpu.grad_table, 1e-4, name + " CUDA twin table gradient");
  }
}

// Samples along rays, consecutive like a NeRF batch: neighbouring threads share cells on the coarse
// levels, which the backward kernel sums within the warp before its atomics.
TEST_F(HashGridGpu, CoherentRaySamplesMatchTheTwin) {
  const HashGridConfig config;
  const HashGridLayout layout = ComputeHashGridLayout(config);
  at::Generator gen = at::detail::createCPUGenerator(14);
  const int64_t rays = 300, samples = 96, n = rays * samples - 5;
  const at::Tensor origin = at::rand({rays, 1, 3}, gen);
  const at::Tensor dir = at::randn({rays, 1, 3}, gen);
  const at::Tensor t = at::linspace(0.0, 0.6, samples).view({1, samples, 1});
  const at::Tensor x = (origin + t * dir / dir.norm(2, -1, true)).reshape({-1, 3}).narrow(0, 0, n).contiguous();
  const at::Tensor table = at::rand({layout.total_params, 2}, gen) * 2 - 1;
  at::Tensor dy = at::randn({n, layout.output_dim()}, gen);
  dy.index_fill_(0, at::arange(0, n, 7), 0.0);
  const Result cpu = EncodeWithGrad(&HashGridEncode, x, table, dy, config);
  const Result kernel = EncodeWithGrad(&HashGridEncode, x.cuda(), table.cuda(), dy.cuda(), config);
  ExpectClose(kernel.y, cpu.y, 1e-5, "forward");
  ExpectClose(kernel.grad_table, cpu.grad_table, 1e-4, "table gradient");
}

TEST_F(HashGridGpu, OutOfRangeAndNanPointsMatchTheTwin) {
  const HashGridConfig config;
  const HashGridLayout layout = ComputeHashGridLayout(config);
  at::Generator gen = at::detail::createCPUGenerator(12);
  at::Tensor x = at::rand({300, 3}, gen) * 3 - 1;  // two thirds of the coordinates outside [0,1]
  x[0][0] = NAN;
  x[1][1] = INFINITY;
  x[2][2] = -INFINITY;
  const at::Tensor table = at::rand({layout.total_params, 2}, gen) * 2 - 1;
  const at::Tensor dy = at::randn({300, layout.output_dim()}, gen);
  const Result cpu = EncodeWithGrad(&HashGridEncode, x, table, dy, config);
  const Result kernel = EncodeWithGrad(&HashGridEncode, x.cuda(), table.cuda(), dy.cuda(), config);
  ExpectClose(kernel.y, cpu.y, 1e-5, "forward");
  ExpectClose(kernel.grad_table, cpu.grad_table, 1e-4, "table gradient");
}

TEST_F(HashGridGpu, NonContiguousInputsDeterministicForwardAndFloat64Fallback) {
  const HashGridConfig config = Config(6, 2, 14, 8, 1.8);
  const HashGridLayout layout = ComputeHashGridLayout(config);
  at::Generator gen = at::detail::createCPUGenerator(13);
  const at::Tensor wide = at::rand({777, 5}, gen);
  const at::Tensor x = wide.narrow(1, 1, 3);  // a strided view
  const at::Tensor table = at::rand({layout.total_params, 2}, gen) * 2 - 1;
  const at::Tensor expected = HashGridEncode(x, table, config);
  const at::Tensor a = HashGridEncode(wide.cuda().narrow(1, 1, 3), table.cuda(), config);
  const at::Tensor b = HashGridEncode(x.cuda(), table.cuda(), config);
  ExpectClose(a, expected, 1e-5, "strided points");
  EXPECT_TRUE(at::equal(a, b)) << "the forward kernel has no atomics and must be deterministic";
  // A table one row into its storage is not aligned for the paired 16-byte loads: the unpaired path.
  const at::Tensor storage = at::rand({layout.total_params + 1, 2}, gen).cuda();
  const at::Tensor shifted = storage.narrow(0, 1, layout.total_params);
  ASSERT_NE(reinterpret_cast<uintptr_t>(shifted.data_ptr<float>()) % 16, uintptr_t{0});
  ExpectClose(HashGridEncode(x.cuda(), shifted, config), HashGridEncode(x, shifted.cpu(), config), 1e-5,
              "misaligned table");
  // float64 on CUDA runs the twin: it matches the CPU twin in float64.
  const at::Tensor x64 = x.to(at::kDouble), table64 = table.to(at::kDouble);
  const at::Tensor d = HashGridEncode(x64.cuda(), table64.cuda(), config);
  ExpectClose(d, HashGridEncode(x64, table64, config), 1e-12, "float64 fallback");
  EXPECT_EQ(HashGridEncode(at::zeros({0, 3}, at::kCUDA), table.cuda(), config).sizes(),
            (at::IntArrayRef{0, layout.output_dim()}));
}

}  // namespace
}  // namespace psd3d
