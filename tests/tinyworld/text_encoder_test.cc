// The tiny prior's text encoder and the attention it shares with the UNet.
#include "worker/tinyworld/text_encoder.h"

#include <gtest/gtest.h>

#include "worker/tinyworld/nn_blocks.h"

#include <cmath>

#include <torch/nn/module.h>

#include "worker/tinyworld/tokenizer.h"

namespace psd3d::tinyworld {
namespace {

TextEncoderConfig TinyConfig() {
  TextEncoderConfig c;
  c.vocab_size = Tokenizer::TinyWorld().vocab_size();
  c.max_length = Tokenizer::TinyWorld().max_length();
  c.dim = 32;
  c.heads = 2;
  c.mlp_dim = 64;
  return c;
}

at::Tensor Ids(const std::vector<std::string>& prompts) {
  absl::StatusOr<at::Tensor> ids = Tokenizer::TinyWorld().EncodeBatch(prompts);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return *ids;
}

TEST(TextEncoder, ContextShapeAndItDependsOnWordsAndPositions) {
  TextEncoder encoder(TinyConfig(), 1);
  at::Tensor ids = Ids({"a red cube", "a blue cube", "a cube that is red", ""});
  at::Tensor context = encoder.Forward(ids);
  const int64_t length = Tokenizer::TinyWorld().max_length();
  ASSERT_EQ(context.sizes(), (at::IntArrayRef{4, length, 32}));
  EXPECT_TRUE(at::isfinite(context).all().item<bool>());
  // Another color, word order, and the empty prompt each give another context.
  EXPECT_GT((context[0] - context[1]).abs().max().item<float>(), 1e-3);
  EXPECT_GT((context[0] - context[2]).abs().max().item<float>(), 1e-3);
  EXPECT_GT((context[0] - context[3]).abs().max().item<float>(), 1e-3);
  // Pads at different positions read differently (learned positions).
  EXPECT_GT((context[3][length - 1] - context[3][length - 2]).abs().max().item<float>(), 1e-3);
  // Each position is layer-normed.
  EXPECT_NEAR(context[0].mean(-1).abs().max().item<float>(), 0, 1e-4);
}

TEST(TextEncoder, SameSeedSameWeightsOtherSeedOther) {
  at::Tensor ids = Ids({"one green torus"});
  at::Tensor a = TextEncoder(TinyConfig(), 7).Forward(ids), b = TextEncoder(TinyConfig(), 7).Forward(ids);
  at::Tensor c = TextEncoder(TinyConfig(), 8).Forward(ids);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::allclose(a, c));
}

TEST(TextEncoder, GradientsReachEveryParameter) {
  TextEncoder encoder(TinyConfig(), 3);
  encoder.Forward(Ids({"a photo of a pink cone", "a yellow pyramid"})).pow(2).sum().backward();
  for (const auto& p : encoder.module()->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0) << p.key();
  }
}

TEST(TextEncoder, ConfigJsonRoundTripAndBadConfigsAreNamed) {
  TextEncoderConfig c = TinyConfig();
  c.layers = 3;
  absl::StatusOr<TextEncoderConfig> back = TextEncoderConfigFromJson(TextEncoderConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->vocab_size, c.vocab_size);
  EXPECT_EQ(back->max_length, c.max_length);
  EXPECT_EQ(back->dim, 32);
  EXPECT_EQ(back->layers, 3);
  EXPECT_EQ(back->heads, 2);
  EXPECT_EQ(back->mlp_dim, 64);

  c.heads = 5;
  EXPECT_NE(ValidateTextEncoderConfig(c).message().find("heads"), std::string::npos);
  JsonValue j = JsonValue::Object();
  j.Set("vocab_size", JsonValue::Int(20));
  absl::StatusOr<TextEncoderConfig> missing = TextEncoderConfigFromJson(j);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("max_length"), std::string::npos) << missing.status();
}

TEST(MultiHeadAttention, MatchesPerHeadSoftmaxAndSharesABatchOfOne) {
  at::Generator g = at::detail::createCPUGenerator(5);
  at::Tensor q = at::randn({2, 6, 8}, g), k = at::randn({1, 4, 8}, g), v = at::randn({1, 4, 8}, g);
  at::Tensor out = MultiHeadAttention(q, k, v, 2);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{2, 6, 8}));
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t h = 0; h < 2; ++h) {
      at::Tensor qh = q[b].narrow(1, 4 * h, 4), kh = k[0].narrow(1, 4 * h, 4), vh = v[0].narrow(1, 4 * h, 4);
      at::Tensor expected = at::softmax(at::matmul(qh, kh.t()) / 2.0, 1).matmul(vh);
      EXPECT_TRUE(at::allclose(out[b].narrow(1, 4 * h, 4), expected, 1e-5, 1e-6));
    }
  }
  EXPECT_TRUE(at::allclose(out, MultiHeadAttention(q, k.expand({2, 4, 8}), v.expand({2, 4, 8}), 2), 1e-6, 1e-6));
}

}  // namespace
}  // namespace psd3d::tinyworld
