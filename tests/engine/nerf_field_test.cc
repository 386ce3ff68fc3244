// The coarse NeRF field at initialisation is threestudio's blob: positive density peaked at the origin,
// outward normals; parameters are seeded, grouped, and round-trip through the state map.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "worker/fields/nerf_field.h"

namespace psd3d {
namespace {

// Unit directions [n,3] times radii [n] → points [n,3].
at::Tensor OnSpheres(const at::Tensor& radii, at::Generator& gen) {
  at::Tensor dirs = at::randn({radii.size(0), 3}, gen);
  return dirs / dirs.norm(2, -1, true) * radii.unsqueeze(1);
}

TEST(NerfField, ShapesAndRanges) {
  NerfField field(NerfFieldConfig{}, 1);
  at::Generator gen = at::detail::createCPUGenerator(1);
  at::Tensor points = at::rand({2, 5, 3}, gen) * 2 - 1;
  FieldSample s = field.Forward(points);
  EXPECT_EQ(s.density.sizes(), (at::IntArrayRef{2, 5}));
  EXPECT_EQ(s.albedo.sizes(), (at::IntArrayRef{2, 5, 3}));
  EXPECT_TRUE(at::allclose(field.Density(points), s.density));
  EXPECT_GT(s.albedo.min().item<float>(), 0.f);
  EXPECT_LT(s.albedo.max().item<float>(), 1.f);
  EXPECT_EQ(field.Normals(points).sizes(), (at::IntArrayRef{2, 5, 3}));
  EXPECT_THROW(field.Forward(at::zeros({4, 2})), c10::Error);
  EXPECT_THROW(field.Forward(at::zeros({4, 3}, at::kDouble)), c10::Error);
}

TEST(NerfField, InitialDensityIsAPositiveBlobPeakedAtTheCentre) {
  NerfField field(NerfFieldConfig{}, 2);
  at::Generator gen = at::detail::createCPUGenerator(2);
  // Positive everywhere, also outside the bound (the corners of [−1.5, 1.5]³).
  at::Tensor anywhere = at::rand({4096, 3}, gen) * 3 - 1.5;
  EXPECT_GT(field.Density(anywhere).min().item<float>(), 0.f);
  // softplus(10 + tiny MLP output) at the origin, and the maximum.
  const float centre = field.Density(at::zeros({1, 3})).item<float>();
  EXPECT_NEAR(centre, std::log1p(std::exp(10.0)), 0.05);
  EXPECT_LE(field.Density(anywhere).max().item<float>(), centre);
  // Decreasing along rays out of the centre; about softplus(0) = ln 2 at the blob's std (0.5).
  at::Tensor radii = at::tensor({0.1f, 0.3f, 0.5f, 0.7f, 0.9f});
  for (int k = 0; k < 8; ++k) {
    at::Tensor dir = at::randn({1, 3}, gen);
    dir = dir / dir.norm();
    at::Tensor d = field.Density(radii.unsqueeze(1) * dir);
    EXPECT_TRUE((d.narrow(0, 1, 4) < d.narrow(0, 0, 4)).all().item<bool>()) << d;
    EXPECT_NEAR(d[2].item<float>(), std::log(2.0), 0.05);
  }
}

TEST(NerfField, InitialNormalsPointOutward) {
  NerfField field(NerfFieldConfig{}, 3);
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor points = OnSpheres(at::rand({256}, gen) * 0.7 + 0.2, gen);  // radii in [0.2, 0.9]
  at::Tensor n = field.Normals(points);
  EXPECT_TRUE(at::allclose(n.norm(2, -1), at::ones({256}), 1e-5, 1e-5));
  at::Tensor radial = points / points.norm(2, -1, true);
  EXPECT_GT((n * radial).sum(-1).min().item<float>(), 0.99f);
}

TEST(NerfField, DeterministicUnderASeed) {
  NerfField a(NerfFieldConfig{}, 42), b(NerfFieldConfig{}, 42), c(NerfFieldConfig{}, 43);
  for (const auto& [name, t] : a.StateDict()) {
    EXPECT_TRUE(at::equal(t, b.StateDict().at(name))) << name;
    EXPECT_FALSE(at::equal(t, c.StateDict().at(name))) << name;
  }
  at::Generator gen = at::detail::createCPUGenerator(4);
  at::Tensor points = at::rand({64, 3}, gen) * 2 - 1;
  EXPECT_TRUE(at::equal(a.Forward(points).albedo, b.Forward(points).albedo));
  EXPECT_TRUE(at::equal(a.Normals(points), b.Normals(points)));
}

TEST(NerfField, ParameterGroupsReceiveGradients) {
  NerfFieldConfig config;
  config.encoding.levels = 4;
  config.encoding.log2_table_size = 12;
  NerfField field(config, 5);
  NerfField::ParameterGroups groups = field.Parameters();
  ASSERT_EQ(groups.encoding.size(), 1u);
  ASSERT_EQ(groups.mlp.size(), 4u);
  EXPECT_EQ(groups.encoding[0].sizes(), (at::IntArrayRef{ComputeHashGridLayout(config.encoding).total_params, 2}));
  EXPECT_EQ(groups.mlp[0].sizes(), (at::IntArrayRef{64, 8}));  // density: 8 inputs → 64
  EXPECT_EQ(groups.mlp[1].sizes(), (at::IntArrayRef{1, 64}));
  EXPECT_EQ(groups.mlp[3].sizes(), (at::IntArrayRef{3, 64}));  // albedo
  at::Generator gen = at::detail::createCPUGenerator(5);
  FieldSample s = field.Forward(at::rand({128, 3}, gen) * 2 - 1);
  (s.density.sum() + s.albedo.sum()).backward();
  for (const at::Tensor& p : groups.encoding) EXPECT_GT(p.grad().abs().sum().item<float>(), 0.f);
  for (const at::Tensor& p : groups.mlp) {
    ASSERT_TRUE(p.is_leaf() && p.requires_grad());
    EXPECT_GT(p.grad().abs().sum().item<float>(), 0.f);
  }
}

TEST(NerfField, StateRoundTripsAndBadStatesAreRejected) {
  NerfFieldConfig config;
  config.encoding.levels = 4;
  config.encoding.log2_table_size = 12;
  NerfField a(config, 6), b(config, 7);
  at::Generator gen = at::detail::createCPUGenerator(6);
  at::Tensor points = at::rand({32, 3}, gen) * 2 - 1;
  const at::Tensor b_before = b.Forward(points).albedo.detach().clone();
  const at::Tensor table_ref = b.Parameters().encoding[0];

  auto state = a.StateDict();
  ASSERT_EQ(state.size(), 5u);
  auto missing = state;
  missing.erase("feature_network.1.weight");
  EXPECT_NE(b.LoadStateDict(missing).message().find("missing 'feature_network.1.weight'"), std::string::npos);
  auto wrong_shape = state;
  wrong_shape["encoding.table"] = at::zeros({8, 2});
  EXPECT_NE(b.LoadStateDict(wrong_shape).message().find("shape"), std::string::npos);
  auto extra = state;
  extra["density_network.0.bias"] = at::zeros({64});
  EXPECT_NE(b.LoadStateDict(extra).message().find("unexpected"), std::string::npos);
  auto nan = state;
  nan["density_network.1.weight"] = at::full({1, 64}, NAN);
  EXPECT_NE(b.LoadStateDict(nan).message().find("NaN"), std::string::npos);
  EXPECT_TRUE(at::equal(b.Forward(points).albedo, b_before)) << "a rejected state must change nothing";

  ASSERT_TRUE(b.LoadStateDict(state).ok());
  EXPECT_TRUE(at::equal(b.Forward(points).albedo, a.Forward(points).albedo));
  EXPECT_TRUE(at::equal(b.Density(points), a.Density(points)));
  EXPECT_TRUE(b.Parameters().encoding[0].is_same(table_ref)) << "loading keeps the parameter tensors";
}

}  // namespace
}  // namespace psd3d
