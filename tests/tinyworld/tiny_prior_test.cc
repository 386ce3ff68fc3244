// The tiny diffusion prior: the DiffusionPrior contract, training on a fixed batch, and pack round trips.
#include "worker/tinyworld/tiny_prior.h"

#include <gtest/gtest.h>

#include "worker/tinyworld/nn_blocks.h"

#include <unistd.h>

#include <filesystem>

#include <c10/core/GradMode.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>

#include "worker/formats/safetensors.h"
#include "worker/models/ddim_sampler.h"
#include "worker/render/cameras.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::tinyworld {
namespace {

TinyPriorConfig TinyConfig() {
  TinyPriorConfig c;
  c.text.dim = 32;
  c.text.heads = 2;
  c.text.layers = 1;
  c.text.mlp_dim = 64;
  c.unet.image_size = 16;
  c.unet.channels = {16, 32};
  c.unet.res_blocks = 1;
  c.unet.self_attention_max_size = 8;
  c.unet.cross_attention_max_size = 16;
  c.unet.head_dim = 16;
  c.unet.embed_dim = 32;
  return c;
}

std::unique_ptr<TinyPrior> MakePrior(uint64_t seed = 1, const TinyPriorConfig& config = TinyConfig()) {
  absl::StatusOr<std::unique_ptr<TinyPrior>> p = TinyPrior::Create(config, at::kCPU, seed);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Re-draws the zero-initialized output layers (so inputs matter) and rounds the weights to F16, the
// precision packs store: a Save → Load round trip is then exact.
void ScrambleAndRoundToHalf(TinyPrior& prior, uint64_t seed) {
  InitWeights(prior.module(), seed);
  c10::NoGradGuard no_grad;
  for (at::Tensor& p : prior.module().parameters()) p.copy_(p.to(at::kHalf).to(at::kFloat));
}

CameraBatch Cameras(int64_t n) {
  at::Tensor elevation = at::linspace(-0.1, 0.6, n), azimuth = at::linspace(0, 5, n);
  return OrbitCameras(elevation, azimuth, at::full({n}, 3.0), at::full({n}, 0.785));
}

std::string TempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("psd3d_prior_" + name + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

TEST(TinyPrior, PromptsEncodeAndUnknownWordsAreNamed) {
  auto prior = MakePrior();
  absl::StatusOr<at::Tensor> context = prior->EncodePrompt("a photo of a red cube");
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ(context->sizes(), (at::IntArrayRef{1, prior->tokenizer().max_length(), 32}));
  EXPECT_FALSE(context->requires_grad());
  EXPECT_EQ(prior->EmptyContext().sizes(), context->sizes());
  absl::StatusOr<at::Tensor> bad = prior->EncodePrompt("a red dragon");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("dragon"), std::string::npos) << bad.status();
}

TEST(TinyPrior, PixelLatentsAndTheDdpmSchedule) {
  auto prior = MakePrior();
  EXPECT_EQ(prior->image_size(), 16);
  EXPECT_EQ(prior->schedule().num_steps(), 1000);
  EXPECT_TRUE(at::allclose(prior->schedule().alphas_cumprod, NoiseSchedule::Linear().alphas_cumprod));
  at::Tensor images = at::rand({2, 3, 16, 16});
  EXPECT_TRUE(at::allclose(prior->Encode(images), images * 2 - 1));
  EXPECT_TRUE(at::allclose(prior->Decode(prior->Encode(images)), images, 1e-6, 1e-6));
}

TEST(TinyPrior, OneContextIsSharedByTheBatchAndGradientsReachInputs) {
  auto prior = MakePrior();
  ScrambleAndRoundToHalf(*prior, 2);
  prior->SetTrainable(false);
  at::Generator g = at::detail::createCPUGenerator(3);
  at::Tensor x = at::randn({3, 3, 16, 16}, g).requires_grad_(true);
  at::Tensor t = at::tensor({10, 500, 990}, at::kLong);
  at::Tensor context = prior->EncodePrompt("a blue torus")->clone().requires_grad_(true);
  at::Tensor eps = prior->PredictNoise(x, t, context, Cameras(3));
  ASSERT_EQ(eps.sizes(), x.sizes());
  eps.pow(2).sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<float>(), 0);
  EXPECT_GT(context.grad().abs().sum().item<float>(), 0);
  for (const at::Tensor& p : prior->module().parameters()) EXPECT_FALSE(p.grad().defined());
  c10::NoGradGuard no_grad;
  EXPECT_TRUE(at::allclose(prior->PredictNoise(x, t, context.expand({3, -1, -1}), Cameras(3)), eps, 1e-5, 1e-6));
}

// A fixed batch (4 flat-colored squares, fixed noise and timesteps): ε-MSE must fall clearly within a
// few dozen Adam steps, through both the UNet and the text encoder.
TEST(TinyPrior, OverfitsOneFixedBatch) {
  auto prior = MakePrior(4);
  at::Tensor images = at::ones({4, 3, 16, 16});
  const float colors[4][3] = {{0.9f, 0.1f, 0.1f}, {0.1f, 0.2f, 0.9f}, {0.1f, 0.8f, 0.2f}, {0.9f, 0.8f, 0.1f}};
  for (int i = 0; i < 4; ++i) {
    for (int c = 0; c < 3; ++c) images[i][c].narrow(0, 2 + i, 8).narrow(1, 4, 8).fill_(colors[i][c]);
  }
  absl::StatusOr<at::Tensor> ids =
      prior->tokenizer().EncodeBatch({"a red cube", "a blue cube", "a green cube", "a yellow cube"});
  ASSERT_TRUE(ids.ok());
  at::Generator g = at::detail::createCPUGenerator(5);
  at::Tensor noise = at::randn({4, 3, 16, 16}, g);
  at::Tensor t = at::tensor({50, 200, 400, 700}, at::kLong);
  at::Tensor x_t = prior->schedule().AddNoise(prior->Encode(images), noise, t);
  CameraBatch cameras = Cameras(4);

  torch::optim::Adam optimizer(prior->module().parameters(), torch::optim::AdamOptions(2e-3));
  auto loss_now = [&] { return (prior->PredictNoise(x_t, t, prior->EncodeIds(*ids), cameras) - noise).pow(2).mean(); };
  const float first = loss_now().item<float>();
  float last = first;
  for (int step = 0; step < 40; ++step) {
    optimizer.zero_grad();
    at::Tensor loss = loss_now();
    loss.backward();
    optimizer.step();
    last = loss.item<float>();
  }
  std::printf("fixed-batch loss %.4f -> %.4f\n", first, last);
  EXPECT_LT(last, 0.5f * first);
  bool text_moved = false;
  for (const auto& p : prior->module().named_parameters()) {
    if (p.key().rfind("text.", 0) == 0 && p.value().grad().defined() &&
        p.value().grad().abs().sum().item<float>() > 0) {
      text_moved = true;
    }
  }
  EXPECT_TRUE(text_moved);
}

TEST(TinyPrior, SaveLoadRoundTripGivesIdenticalOutputs) {
  auto prior = MakePrior(6);
  ScrambleAndRoundToHalf(*prior, 7);
  const std::string dir = TempDir("roundtrip");
  JsonValue training = JsonValue::Object();
  training.Set("steps", JsonValue::Int(3));
  ASSERT_TRUE(prior->Save(dir, training, JsonValue::Object()).ok());

  absl::StatusOr<std::unique_ptr<TinyPrior>> loaded = TinyPrior::Load(dir, at::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_NE((*loaded)->name().find(dir), std::string::npos);
  for (const at::Tensor& p : (*loaded)->module().parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_EQ((*loaded)->NumParameters(), prior->NumParameters());

  at::Tensor a = *prior->EncodePrompt("one purple sphere"), b = *(*loaded)->EncodePrompt("one purple sphere");
  EXPECT_TRUE(at::equal(a, b));
  at::Generator g = at::detail::createCPUGenerator(8);
  at::Tensor x = at::randn({2, 3, 16, 16}, g), t = at::tensor({3, 800}, at::kLong);
  c10::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(prior->PredictNoise(x, t, a, Cameras(2)), (*loaded)->PredictNoise(x, t, b, Cameras(2))));

  // The manifest entry carries what rebuilds the prior, plus the run's records.
  absl::StatusOr<JsonValue> entry = ReadModelEntry(dir, kPriorKey);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(*JsonString(*entry, "weights"), kPriorWeightsFile);
  EXPECT_EQ(*JsonInt(*entry, "image_size"), 16);
  EXPECT_EQ(*JsonInt(*entry->Find("training"), "steps"), 3);
  ASSERT_NE(entry->Find("architecture"), nullptr);
  absl::StatusOr<TinyPriorConfig> config = TinyPriorConfigFromJson(*entry->Find("architecture"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->unet.channels, TinyConfig().unet.channels);
  // Weights are stored as F16.
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(dir + "/" + kPriorWeightsFile);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->tensors.at("unet.conv_in.weight").scalar_type(), at::kHalf);
  std::filesystem::remove_all(dir);
}

TEST(TinyPrior, LoadErrorsAreClear) {
  const std::string dir = TempDir("errors");
  EXPECT_EQ(TinyPrior::Load(dir, at::kCPU).status().code(), absl::StatusCode::kNotFound);
  // Weights of another architecture never half-load.
  ASSERT_TRUE(MakePrior(1)->Save(dir, JsonValue::Object(), JsonValue::Object()).ok());
  TinyPriorConfig wider = TinyConfig();
  wider.unet.channels = {16, 48};
  const std::string other = TempDir("errors_other");
  ASSERT_TRUE(MakePrior(1, wider)->Save(other, JsonValue::Object(), JsonValue::Object()).ok());
  std::filesystem::copy_file(other + "/" + kPriorWeightsFile, dir + "/" + kPriorWeightsFile,
                             std::filesystem::copy_options::overwrite_existing);
  absl::Status s = TinyPrior::Load(dir, at::kCPU).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("prior of pack"), std::string::npos) << s;
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(other);
}

TEST(TinyPrior, ConfigJsonRoundTripAndBadConfigsAreErrors) {
  auto prior = MakePrior();
  absl::StatusOr<TinyPriorConfig> back = TinyPriorConfigFromJson(TinyPriorConfigToJson(prior->config()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->text.vocab_size, prior->tokenizer().vocab_size());
  EXPECT_EQ(back->unet.context_dim, 32);
  EXPECT_EQ(back->unet.channels, TinyConfig().unet.channels);

  TinyPriorConfig c = prior->config();
  c.unet.context_dim = 16;
  absl::StatusOr<TinyPriorConfig> mismatch = TinyPriorConfigFromJson(TinyPriorConfigToJson(c));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("context_dim"), std::string::npos) << mismatch.status();
  c = TinyConfig();
  c.unet.channels = {16, 30};
  EXPECT_EQ(TinyPrior::Create(c, at::kCPU).status().code(), absl::StatusCode::kInvalidArgument);
}

// The CI check of the issue: a 10-step guided sample runs and is deterministic under a seed.
TEST(TinyPrior, TenStepSampleRunsAndIsDeterministic) {
  auto prior = MakePrior(9);
  ScrambleAndRoundToHalf(*prior, 10);
  prior->SetTrainable(false);
  at::Tensor context = *prior->EncodePrompt("a green cone");
  DdimOptions options;
  options.steps = 10;
  options.guidance_scale = 3;
  at::Generator g1 = at::detail::createCPUGenerator(11), g2 = at::detail::createCPUGenerator(11);
  at::Tensor a = SampleDdim(*prior, context, Cameras(2), options, g1);
  at::Tensor b = SampleDdim(*prior, context, Cameras(2), options, g2);
  ASSERT_EQ(a.sizes(), (at::IntArrayRef{2, 3, 16, 16}));
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_GE(a.min().item<float>(), 0);
  EXPECT_LE(a.max().item<float>(), 1);
}

}  // namespace
}  // namespace psd3d::tinyworld
