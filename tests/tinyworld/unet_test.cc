// The tiny prior's UNet: shapes, size, conditioning and gradients.
#include "worker/tinyworld/unet.h"

#include <gtest/gtest.h>

#include "worker/tinyworld/nn_blocks.h"

#include <cmath>

#include <torch/nn/module.h>

#include "worker/tinyworld/text_encoder.h"

namespace psd3d::tinyworld {
namespace {

UNetConfig TinyConfig() {
  UNetConfig c;
  c.image_size = 16;
  c.channels = {16, 32};
  c.res_blocks = 1;
  c.self_attention_max_size = 8;
  c.cross_attention_max_size = 16;
  c.head_dim = 16;
  c.context_dim = 24;
  c.embed_dim = 32;
  return c;
}

struct Inputs {
  at::Tensor x, t, context, elevation, azimuth;
};

Inputs RandomInputs(const UNetConfig& c, int64_t batch, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return {at::randn({batch, 3, c.image_size, c.image_size}, g), at::randint(0, 1000, {batch}, g),
          at::randn({batch, 10, c.context_dim}, g), at::rand({batch}, g) * 0.8 - 0.2, at::rand({batch}, g) * 6.28};
}

at::Tensor Predict(const UNet& net, const Inputs& in) {
  return net.Forward(in.x, in.t, in.context, in.elevation, in.azimuth);
}

// A UNet whose zero-initialized output layers are re-drawn, so every input matters from the start.
UNet NonZeroUNet(const UNetConfig& c, uint64_t seed) {
  UNet net(c, seed);
  InitWeights(*net.module(), seed + 100);
  return net;
}

TEST(UNet, DefaultConfigHasAtMostThreeMillionParametersAndKeepsTheShape) {
  UNet net(UNetConfig{}, 1);
  std::printf("default UNet parameters: %lld\n", static_cast<long long>(net.NumParameters()));
  EXPECT_LE(net.NumParameters(), 3'000'000);
  EXPECT_GE(net.NumParameters(), 1'000'000);
  Inputs in = RandomInputs(UNetConfig{}, 1, 2);
  at::Tensor eps = Predict(net, in);
  EXPECT_EQ(eps.sizes(), (at::IntArrayRef{1, 3, 64, 64}));
  // Output layers start at zero: a fresh network predicts ε̂ = 0.
  EXPECT_EQ(eps.abs().max().item<float>(), 0);
}

TEST(UNet, GradientsFlowToTheInputAndTheContext) {
  UNet net = NonZeroUNet(TinyConfig(), 3);
  Inputs in = RandomInputs(TinyConfig(), 2, 4);
  in.x.requires_grad_(true);
  in.context.requires_grad_(true);
  Predict(net, in).pow(2).sum().backward();
  ASSERT_TRUE(in.x.grad().defined() && in.context.grad().defined());
  for (int64_t b = 0; b < 2; ++b) EXPECT_GT(in.x.grad()[b].abs().sum().item<float>(), 0);
  for (int64_t b = 0; b < 2; ++b) EXPECT_GT(in.context.grad()[b].abs().sum().item<float>(), 0);
  for (const auto& p : net.module()->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
  }
}

TEST(UNet, EveryConditionChangesTheOutputAndAContextOfOneIsShared) {
  UNet net = NonZeroUNet(TinyConfig(), 5);
  Inputs in = RandomInputs(TinyConfig(), 2, 6);
  c10::NoGradGuard no_grad;
  at::Tensor base = Predict(net, in);
  auto differs = [&](Inputs changed) { return (Predict(net, changed) - base).abs().max().item<float>() > 1e-4; };
  Inputs t = in, context = in, elevation = in, azimuth = in;
  t.t = t.t + 100;
  context.context = context.context * 1.5 + 0.3;  // (cross-attention ignores key order: the encoder adds positions)
  elevation.elevation = elevation.elevation + 0.3;
  azimuth.azimuth = azimuth.azimuth + 1.0;
  EXPECT_TRUE(differs(t));
  EXPECT_TRUE(differs(context));
  EXPECT_TRUE(differs(elevation));
  EXPECT_TRUE(differs(azimuth));

  Inputs shared = in;
  shared.context = in.context.narrow(0, 0, 1);
  Inputs expanded = in;
  expanded.context = shared.context.expand({2, 10, 24});
  EXPECT_TRUE(at::allclose(Predict(net, shared), Predict(net, expanded), 1e-5, 1e-6));
}

TEST(UNet, SameSeedSameNetwork) {
  Inputs in = RandomInputs(TinyConfig(), 1, 7);
  c10::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(Predict(NonZeroUNet(TinyConfig(), 9), in), Predict(NonZeroUNet(TinyConfig(), 9), in)));
  EXPECT_FALSE(at::allclose(Predict(NonZeroUNet(TinyConfig(), 9), in), Predict(NonZeroUNet(TinyConfig(), 10), in)));
}

TEST(UNet, ConfigJsonRoundTripAndBadConfigsAreNamed) {
  UNetConfig c = TinyConfig();
  c.channels = {16, 32, 48};
  absl::StatusOr<UNetConfig> back = UNetConfigFromJson(UNetConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->channels, c.channels);
  EXPECT_EQ(back->image_size, 16);
  EXPECT_EQ(back->res_blocks, 1);
  EXPECT_EQ(back->self_attention_max_size, 8);
  EXPECT_EQ(back->cross_attention_max_size, 16);
  EXPECT_EQ(back->head_dim, 16);
  EXPECT_EQ(back->context_dim, 24);
  EXPECT_EQ(back->embed_dim, 32);
  EXPECT_EQ(back->groups, 8);

  c.image_size = 18;  // not divisible by 4
  EXPECT_NE(ValidateUNetConfig(c).message().find("image_size"), std::string::npos);
  c = TinyConfig();
  c.channels = {16, 20};
  EXPECT_NE(ValidateUNetConfig(c).message().find("width 20"), std::string::npos);
  JsonValue j = UNetConfigToJson(TinyConfig());
  JsonValue partial = JsonValue::Object();
  for (size_t i = 0; i < j.keys().size(); ++i) {
    if (j.keys()[i] != "embed_dim") partial.Set(j.keys()[i], j.items()[i]);
  }
  absl::StatusOr<UNetConfig> missing = UNetConfigFromJson(partial);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("embed_dim"), std::string::npos) << missing.status();
}

TEST(UNet, TimestepFeaturesAreCosThenSin) {
  at::Tensor f = TimestepFeatures(at::tensor({0, 500}, at::kLong), 8);
  ASSERT_EQ(f.sizes(), (at::IntArrayRef{2, 8}));
  EXPECT_TRUE(at::allclose(f[0], at::cat({at::ones({4}), at::zeros({4})})));
  EXPECT_NEAR(f[1][0].item<float>(), std::cos(500.0), 1e-4);
  EXPECT_NEAR(f[1][4].item<float>(), std::sin(500.0), 1e-4);
}

}  // namespace
}  // namespace psd3d::tinyworld
