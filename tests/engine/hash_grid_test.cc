// The hash-grid twin follows tiny-cuda-nn's semantics (hash_grid.h): layout, indexing, interpolation,
// the table gradient, and input checks.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "worker/fields/hash_grid.h"

namespace psd3d {
namespace {

const at::TensorOptions kF64 = at::TensorOptions(at::kDouble);

at::Generator Gen(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

// A config small enough for float64 tables and finite differences.
HashGridConfig Small(int levels, int features, int log2_size, int base, double scale) {
  HashGridConfig c;
  c.levels = levels;
  c.features_per_level = features;
  c.log2_table_size = log2_size;
  c.base_resolution = base;
  c.per_level_scale = scale;
  return c;
}

// The encoding computed point by point with the scalar index: an independent reference.
at::Tensor ScalarReference(const at::Tensor& x, const at::Tensor& table, const HashGridConfig& config) {
  const HashGridLayout layout = ComputeHashGridLayout(config);
  const int64_t n = x.size(0), f = layout.features;
  at::Tensor out = at::zeros({n, layout.output_dim()}, kF64);
  auto xa = x.accessor<double, 2>();
  auto ta = table.accessor<double, 2>();
  auto oa = out.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    for (size_t l = 0; l < layout.levels.size(); ++l) {
      const HashGridLevel& level = layout.levels[l];
      double frac[3];
      int64_t cell[3];
      for (int d = 0; d < 3; ++d) {
        const double pos = static_cast<double>(level.scale) * xa[i][d] + 0.5;
        cell[d] = static_cast<int64_t>(std::floor(pos));
        frac[d] = pos - std::floor(pos);
      }
      for (int c = 0; c < 8; ++c) {
        double w = 1;
        int64_t v[3];
        for (int d = 0; d < 3; ++d) {
          const int bit = (c >> d) & 1;
          w *= bit ? frac[d] : 1 - frac[d];
          v[d] = cell[d] + bit;
        }
        const int64_t row = level.offset + HashGridVertexIndex(level, v[0], v[1], v[2]);
        for (int64_t k = 0; k < f; ++k) oa[i][l * f + k] += w * ta[row][k];
      }
    }
  }
  return out;
}

// The message of the c10::Error thrown by fn, or "" when it does not throw.
template <typename Fn>
std::string ErrorOf(Fn fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

TEST(HashGrid, DefaultLayoutMatchesTcnn) {
  // Hand-computed with tcnn's float32 formulas: scale_l = exp2f(l·log2f(1.4472692)) · 16 − 1,
  // res_l = ceil(scale_l) + 1, size_l = min(round_up(res_l³, 8), 2^19).
  const HashGridLayout layout = ComputeHashGridLayout(HashGridConfig{});
  const std::vector<int64_t> res = {16, 24, 34, 49, 71, 102, 148, 213, 308, 446, 646, 934, 1352, 1956, 2831, 4096};
  const std::vector<int64_t> dense_sizes = {4096, 13824, 39304, 117656, 357912};  // 49³ = 117649 → 117656
  ASSERT_EQ(layout.levels.size(), 16u);
  EXPECT_EQ(layout.features, 2);
  EXPECT_EQ(layout.output_dim(), 32);
  EXPECT_FLOAT_EQ(layout.levels[0].scale, 15.0f);
  EXPECT_NEAR(layout.levels[1].scale, 22.1563, 1e-3);
  EXPECT_NEAR(layout.levels[15].scale, 4095.0, 0.01);
  int64_t offset = 0;
  for (int l = 0; l < 16; ++l) {
    const HashGridLevel& level = layout.levels[l];
    EXPECT_EQ(level.resolution, res[l]) << "level " << l;
    const int64_t size = l < 5 ? dense_sizes[l] : (int64_t{1} << 19);
    EXPECT_EQ(level.size, size) << "level " << l;
    EXPECT_EQ(level.dense, l < 5) << "level " << l;
    EXPECT_EQ(level.offset, offset) << "level " << l;
    EXPECT_EQ(level.offset % 8, 0);
    offset += size;
  }
  EXPECT_EQ(offset, 6299960);
  EXPECT_EQ(layout.total_params, 6299960);
}

TEST(HashGrid, ConfigValidation) {
  EXPECT_TRUE(ValidateHashGridConfig(HashGridConfig{}).ok());
  HashGridConfig c;
  c.features_per_level = 3;
  EXPECT_FALSE(ValidateHashGridConfig(c).ok());
  EXPECT_NE(ValidateHashGridConfig(c).message().find("features_per_level"), absl::string_view::npos);
  c = HashGridConfig{};
  c.levels = 0;
  EXPECT_FALSE(ValidateHashGridConfig(c).ok());
  c = HashGridConfig{};
  c.per_level_scale = 4.0;  // 16 · 4^15 ≫ 2^20
  EXPECT_FALSE(ValidateHashGridConfig(c).ok());
  EXPECT_NE(ErrorOf([&] { ComputeHashGridLayout(c); }).find("exceeds"), std::string::npos);
}

TEST(HashGrid, HashUsesTcnnPrimes) {
  // (3·1 ⊕ 5·2654435761 ⊕ 7·805459861) mod 2^32 = 1191511397 (uint32 products); mod 2^19 = 329061.
  const HashGridLayout layout = ComputeHashGridLayout(HashGridConfig{});
  EXPECT_EQ(HashGridVertexIndex(layout.levels[5], 3, 5, 7), 329061);
  // A dense level uses the x-fastest stride.
  EXPECT_EQ(HashGridVertexIndex(layout.levels[0], 3, 5, 7), 3 + 5 * 16 + 7 * 256);

  // Through the encoding: one hashed level of 2^12 rows at resolution 128, row r holding (r, −r); at
  // the vertex (3,5,7) the encoding reads row 1191511397 mod 4096 = 1381.
  const HashGridConfig config = Small(1, 2, 12, 128, 1.5);
  const HashGridLayout small = ComputeHashGridLayout(config);
  ASSERT_FALSE(small.levels[0].dense);
  ASSERT_EQ(small.levels[0].size, 4096);
  at::Tensor rows = at::arange(4096, kF64);
  at::Tensor table = at::stack({rows, -rows}, 1);
  at::Tensor x = (at::tensor({3.0, 5.0, 7.0}, kF64) - 0.5).div(127.0).view({1, 3});
  at::Tensor y = HashGridEncode(x, table, config);
  EXPECT_NEAR(y[0][0].item<double>(), 1381, 1e-6);
  EXPECT_NEAR(y[0][1].item<double>(), -1381, 1e-6);
}

TEST(HashGrid, ExactAtVerticesOfADenseLevel) {
  const HashGridConfig config = Small(2, 2, 14, 8, 2.0);  // scales 7 and 15, both dense
  const HashGridLayout layout = ComputeHashGridLayout(config);
  ASSERT_TRUE(layout.levels[0].dense);
  at::Generator gen = Gen(1);
  at::Tensor table = at::rand({layout.total_params, 2}, gen) * 2 - 1;
  // Vertices (i, j, k) of level 0 sit at x = (v − 0.5) / 7 (tcnn's half-cell offset).
  const std::vector<std::array<int64_t, 3>> vertices = {{1, 1, 1}, {3, 6, 2}, {6, 1, 4}, {5, 5, 5}};
  at::Tensor x = at::empty({4, 3});
  for (int i = 0; i < 4; ++i) {
    for (int d = 0; d < 3; ++d) x[i][d] = (vertices[i][d] - 0.5) / 7.0;
  }
  at::Tensor y = HashGridEncode(x, table, config);
  ASSERT_EQ(y.sizes(), (at::IntArrayRef{4, 4}));
  for (int i = 0; i < 4; ++i) {
    const auto& v = vertices[i];
    const int64_t row = HashGridVertexIndex(layout.levels[0], v[0], v[1], v[2]);
    EXPECT_NEAR(y[i][0].item<float>(), table[row][0].item<float>(), 1e-5);
    EXPECT_NEAR(y[i][1].item<float>(), table[row][1].item<float>(), 1e-5);
  }
}

TEST(HashGrid, TrilinearReproducesAffineFunctionsOnADenseLevel) {
  // Vertex (i,j,k) holds a·(i,j,k) + b; trilinear interpolation reproduces it, so the encoding is
  // a·(scale·x + 0.5) + b wherever all 8 corners lie inside the grid (x ≤ 0.9 for scale 7).
  const HashGridConfig config = Small(1, 2, 14, 8, 2.0);
  const HashGridLevel level = ComputeHashGridLayout(config).levels[0];
  const int64_t r = level.resolution;
  at::Tensor ijk = at::stack(at::meshgrid({at::arange(r, kF64), at::arange(r, kF64), at::arange(r, kF64)}, "ij"), -1)
                       .reshape({-1, 3});  // rows ordered i-major
  at::Tensor a = at::tensor({0.3, -1.2, 0.7}, kF64), b = at::tensor({-0.4, 2.5, 1.0}, kF64);
  at::Tensor table = at::zeros({level.size, 2}, kF64);
  at::Tensor rows = ijk.select(1, 0) + ijk.select(1, 1) * r + ijk.select(1, 2) * r * r;
  table.index_put_({rows.to(at::kLong), 0}, at::matmul(ijk, a) + 0.1);
  table.index_put_({rows.to(at::kLong), 1}, at::matmul(ijk, b) - 0.2);
  at::Generator gen = Gen(2);
  at::Tensor x = at::rand({200, 3}, gen, kF64) * 0.9;
  at::Tensor pos = x * static_cast<double>(level.scale) + 0.5;
  at::Tensor y = HashGridEncode(x, table, config);
  EXPECT_TRUE(at::allclose(y.select(1, 0), at::matmul(pos, a) + 0.1, 1e-10, 1e-10));
  EXPECT_TRUE(at::allclose(y.select(1, 1), at::matmul(pos, b) - 0.2, 1e-10, 1e-10));
}

TEST(HashGrid, ContinuousAcrossCellFacesOfHashedLevels) {
  const HashGridConfig config = Small(3, 2, 10, 16, 1.8);  // scales 15 (dense), 27.8, 50.8 (hashed)
  const HashGridLayout layout = ComputeHashGridLayout(config);
  ASSERT_FALSE(layout.levels[2].dense);
  at::Generator gen = Gen(3);
  at::Tensor table = at::rand({layout.total_params, 2}, gen, kF64) * 2 - 1;
  // Points on a face of the finest level's cells, nudged to either side along x.
  at::Tensor x = at::rand({50, 3}, gen, kF64);
  const double s = layout.levels[2].scale;
  x.select(1, 0).copy_((at::floor(x.select(1, 0) * s) + 0.5) / s);
  at::Tensor dx = at::zeros({1, 3}, kF64);
  dx[0][0] = 1e-12;
  at::Tensor lo = HashGridEncode(x - dx, table, config), hi = HashGridEncode(x + dx, table, config);
  EXPECT_LT((hi - lo).abs().max().item<double>(), 1e-8);
}

TEST(HashGrid, MatchesAPointByPointReference) {
  for (const HashGridConfig& config : {Small(6, 2, 12, 4, 1.6), Small(4, 1, 10, 8, 2.0), Small(3, 4, 9, 5, 3.0)}) {
    const HashGridLayout layout = ComputeHashGridLayout(config);
    at::Generator gen = Gen(4);
    at::Tensor table = at::rand({layout.total_params, layout.features}, gen, kF64) * 2 - 1;
    at::Tensor x = at::rand({64, 3}, gen, kF64);
    x[0].fill_(0.0);
    x[1].fill_(1.0);
    at::Tensor y = HashGridEncode(x, table, config);
    EXPECT_TRUE(at::allclose(y, ScalarReference(x, table, config), 1e-10, 1e-12)) << "F=" << layout.features;
  }
}

TEST(HashGrid, TableGradientMatchesFiniteDifferences) {
  const HashGridConfig config = Small(3, 2, 8, 4, 2.0);  // 64 dense rows, then two hashed levels of 256
  const HashGridLayout layout = ComputeHashGridLayout(config);
  ASSERT_TRUE(layout.levels[0].dense);
  ASSERT_FALSE(layout.levels[1].dense);
  at::Generator gen = Gen(5);
  at::Tensor table = (at::rand({layout.total_params, 2}, gen, kF64) * 2 - 1).requires_grad_(true);
  at::Tensor x = at::rand({7, 3}, gen, kF64);
  at::Tensor weights = at::randn({7, layout.output_dim()}, gen, kF64);
  auto loss = [&](const at::Tensor& t) { return (HashGridEncode(x, t, config) * weights).sum(); };
  at::Tensor grad = torch::autograd::grad({loss(table)}, {table})[0];
  ASSERT_EQ(grad.sizes(), table.sizes());
  EXPECT_GT(grad.abs().sum().item<double>(), 0);

  const double h = 1e-6;
  at::Tensor t = table.detach().clone();
  // Entries with the largest gradients plus a few random ones (most of which are untouched, 0).
  at::Tensor flat_grad = grad.reshape({-1});
  at::Tensor picks = at::cat({std::get<1>(flat_grad.abs().topk(6)), at::randint(t.numel(), {6}, gen, at::kLong)});
  for (int64_t k = 0; k < picks.size(0); ++k) {
    const int64_t e = picks[k].item<int64_t>();
    at::Tensor flat = t.view({-1});
    const double orig = flat[e].item<double>();
    flat[e] = orig + h;
    const double up = loss(t).item<double>();
    flat[e] = orig - h;
    const double down = loss(t).item<double>();
    flat[e] = orig;
    EXPECT_NEAR((up - down) / (2 * h), flat_grad[e].item<double>(), 1e-7) << "entry " << e;
  }
  // And the whole gradient along a random direction.
  at::Tensor v = at::randn(t.sizes(), gen, kF64);
  const double directional = (loss(t + h * v) - loss(t - h * v)).item<double>() / (2 * h);
  EXPECT_NEAR(directional, (grad * v).sum().item<double>(), 1e-6);
}

TEST(HashGrid, NoGradientForPoints) {
  const HashGridConfig config = Small(2, 2, 8, 4, 2.0);
  at::Generator gen = Gen(6);
  at::Tensor table = InitHashGridTable(config, gen).requires_grad_(true);
  at::Tensor x = at::rand({5, 3}, gen).requires_grad_(true);
  HashGridEncode(x, table, config).sum().backward();
  EXPECT_FALSE(x.grad().defined());  // documented: not provided
  EXPECT_TRUE(table.grad().defined());
}

TEST(HashGrid, InitIsSmallUniformAndSeeded) {
  const HashGridConfig config = Small(4, 2, 10, 4, 2.0);
  at::Generator g1 = Gen(7), g2 = Gen(7), g3 = Gen(8);
  at::Tensor a = InitHashGridTable(config, g1), b = InitHashGridTable(config, g2), c = InitHashGridTable(config, g3);
  EXPECT_EQ(a.sizes(), (at::IntArrayRef{ComputeHashGridLayout(config).total_params, 2}));
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::equal(a, c));
  EXPECT_LE(a.abs().max().item<float>(), 1e-4f);
  EXPECT_GT(a.abs().max().item<float>(), 0.9e-4f);
  EXPECT_NEAR(a.mean().item<float>(), 0, 1e-5);
}

TEST(HashGrid, ClampsOutOfRangeAndNanPointsAndHandlesNoPoints) {
  const HashGridConfig config = Small(3, 2, 10, 4, 2.0);
  at::Generator gen = Gen(9);
  at::Tensor table = at::rand({ComputeHashGridLayout(config).total_params, 2}, gen);
  at::Tensor x = at::tensor({-0.5f, 0.2f, 1.5f, NAN, 0.3f, INFINITY}).view({2, 3});
  at::Tensor clamped = at::tensor({0.f, 0.2f, 1.f, 0.f, 0.3f, 1.f}).view({2, 3});
  EXPECT_TRUE(at::equal(HashGridEncode(x, table, config), HashGridEncode(clamped, table, config)));
  at::Tensor empty = HashGridEncode(at::zeros({0, 3}), table, config);
  EXPECT_EQ(empty.sizes(), (at::IntArrayRef{0, 6}));
}

TEST(HashGrid, RejectsBadInputsWithClearErrors) {
  const HashGridConfig config = Small(2, 2, 8, 4, 2.0);
  const int64_t rows = ComputeHashGridLayout(config).total_params;
  at::Tensor table = at::zeros({rows, 2});
  EXPECT_NE(ErrorOf([&] { HashGridEncode(at::zeros({4, 2}), table, config); }).find("x must be [N,3]"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { HashGridEncode(at::zeros({4}), table, config); }).find("x must be [N,3]"),
            std::string::npos);
  const std::string wrong_rows = ErrorOf([&] { HashGridEncode(at::zeros({4, 3}), at::zeros({rows + 1, 2}), config); });
  EXPECT_NE(wrong_rows.find("table must be [" + std::to_string(rows) + ", 2]"), std::string::npos) << wrong_rows;
  EXPECT_NE(ErrorOf([&] { HashGridEncode(at::zeros({4, 3}), at::zeros({rows, 4}), config); }).find("table must be"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { HashGridEncode(at::zeros({4, 3}, kF64), table, config); }).find("share a dtype"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { HashGridEncode(at::zeros({4, 3}, at::kInt), table.to(at::kInt), config); })
                .find("float32"),
            std::string::npos);
  HashGridConfig bad = config;
  bad.features_per_level = 3;
  EXPECT_NE(ErrorOf([&] { HashGridEncode(at::zeros({4, 3}), table, bad); }).find("features_per_level"),
            std::string::npos);
}

}  // namespace
}  // namespace psd3d
