// The reward network: config JSON round trip, size, seeded initialization, shapes, and gradients.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <torch/nn/module.h>

#include "worker/tinyworld/reward_net.h"
#include "worker/tinyworld/tokenizer.h"

namespace psd3d::tinyworld {
namespace {

RewardNetConfig Config(int64_t width, int64_t text_dim = 64) {
  RewardNetConfig c;
  c.vocab_size = Tokenizer::TinyWorld().vocab_size();
  c.max_length = Tokenizer::TinyWorld().max_length();
  c.width = width;
  c.text_dim = text_dim;
  return c;
}

at::Tensor Ids(const std::vector<std::string>& prompts) { return *Tokenizer::TinyWorld().EncodeBatch(prompts); }

at::Tensor Images(int64_t b, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return at::rand({b, 3, 64, 64}, g);
}

TEST(RewardNet, ConfigJsonRoundTripsAndBadConfigsAreErrors) {
  RewardNetConfig c = Config(24, 48);
  absl::StatusOr<JsonValue> parsed = ParseJson(c.ToJson().Dump());
  ASSERT_TRUE(parsed.ok());
  absl::StatusOr<RewardNetConfig> back = RewardNetConfig::FromJson(*parsed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson().Dump(), c.ToJson().Dump());
  EXPECT_EQ(back->width, 24);
  EXPECT_EQ(back->text_dim, 48);

  JsonValue missing = JsonValue::Object();
  missing.Set("type", JsonValue::String("tiny-reward-cnn/1"));
  absl::StatusOr<RewardNetConfig> bad = RewardNetConfig::FromJson(missing);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("vocab_size"), std::string::npos) << bad.status();

  JsonValue foreign = JsonValue::Object();
  foreign.Set("type", JsonValue::String("unet/1"));
  bad = RewardNetConfig::FromJson(foreign);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unet/1"), std::string::npos) << bad.status();

  c.image_size = 60;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(RewardNet, SizesStayInTheBudget) {
  // The shipped widths: 32 ("reward") and 24 ("reward_eval"); 0.2–1 M parameters.
  const int64_t n32 = RewardNet(Config(32), 0).num_parameters();
  const int64_t n24 = RewardNet(Config(24), 0).num_parameters();
  EXPECT_GT(n32, 700000);
  EXPECT_LT(n32, 1000000);
  EXPECT_GT(n24, 200000);
  EXPECT_LT(n24, n32);
}

TEST(RewardNet, InitializationDependsOnTheSeedAlone) {
  RewardNet a(Config(8, 16), 3), b(Config(8, 16), 3), c(Config(8, 16), 4);
  const auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(at::equal(pa[i], pb[i])) << i;
    any_differs |= !at::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(any_differs);
}

TEST(RewardNet, ScoresOneNumberPerImageWithSharedOrPerImagePrompts) {
  RewardNet net(Config(8, 16), 1);
  at::Tensor images = Images(3, 1);
  at::Tensor text = net.EncodeText(Ids({"a red cube"}));
  ASSERT_EQ(text.sizes(), (at::IntArrayRef{1, 16}));
  at::Tensor shared = net.Score(images, text);
  ASSERT_EQ(shared.sizes(), (at::IntArrayRef{3}));
  EXPECT_TRUE(at::allclose(shared, net.Score(images, text.expand({3, 16})), 1e-6, 1e-6));
  // Padding does not count: the same words give the same embedding in any batch.
  at::Tensor batch = net.EncodeText(Ids({"a red cube", "a photo of a blue torus"}));
  EXPECT_TRUE(at::allclose(batch[0], text[0], 1e-6, 1e-6));
  EXPECT_FALSE(at::allclose(batch[1], text[0], 1e-3, 1e-3));
  EXPECT_THROW(net.Score(at::rand({1, 3, 32, 32}), text), c10::Error);
}

TEST(RewardNet, GradientsReachImagesPromptsAndTheFilmLayers) {
  RewardNet net(Config(8, 16), 2);
  at::Tensor images = Images(2, 2).requires_grad_(true);
  at::Tensor score = net.Score(images, net.EncodeText(Ids({"a green cone", "one pink sphere"}))).sum();
  score.backward();
  ASSERT_TRUE(images.grad().defined());
  EXPECT_TRUE(at::isfinite(images.grad()).all().item<bool>());
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0);
  // FiLM starts at zero (plain convolutions) but learns: its gradient is not zero.
  bool film_has_gradient = false;
  for (const auto& p : net.module().named_parameters()) {
    if (p.key().find("film_a.weight") != std::string::npos && p.value().grad().defined())
      film_has_gradient |= p.value().grad().abs().sum().item<double>() > 0;
  }
  EXPECT_TRUE(film_has_gradient);

  net.Freeze();
  for (const at::Tensor& p : net.parameters()) EXPECT_FALSE(p.requires_grad());
  at::Tensor frozen_images = Images(1, 3).requires_grad_(true);
  net.Score(frozen_images, net.EncodeText(Ids({"a red cube"}))).sum().backward();
  EXPECT_TRUE(frozen_images.grad().defined());
}

}  // namespace
}  // namespace psd3d::tinyworld
