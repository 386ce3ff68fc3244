// DDIM sampling against a test-double prior whose data is one known image per context, so the exact ε
// is known in closed form: ε̂ = (x_t − √ᾱ·x0)/√(1−ᾱ). With it, DDIM must land on x0 exactly.
#include "worker/models/ddim_sampler.h"

#include <gtest/gtest.h>

#include <vector>

#include "worker/render/cameras.h"

namespace psd3d {
namespace {

constexpr int64_t kSize = 8;

// Data: x0(c) = base + c for a context whose single value is c ([B,1,1] contexts; the empty one is 0).
// `eps_scale` ≠ 1 makes the prediction deliberately wrong, so the result depends on the noise.
class KnownImagePrior : public DiffusionPrior {
 public:
  explicit KnownImagePrior(double eps_scale = 1.0) : eps_scale_(eps_scale) {
    at::Generator g = at::detail::createCPUGenerator(42);
    base_ = at::rand({1, 3, kSize, kSize}, g) * 0.6 - 0.7;  // in [−0.7, −0.1]: x0 + c stays in [−1, 1]
  }

  std::string name() const override { return "known-image"; }
  at::Device device() const override { return at::kCPU; }
  int64_t image_size() const override { return kSize; }
  const NoiseSchedule& schedule() const override { return schedule_; }
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string&) override { return at::full({1, 1, 1}, 0.4f); }
  at::Tensor EmptyContext() override { return at::zeros({1, 1, 1}); }
  at::Tensor Encode(const at::Tensor& images) override { return images * 2 - 1; }
  at::Tensor Decode(const at::Tensor& latents) override { return (latents + 1) * 0.5; }

  at::Tensor PredictNoise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& context,
                          const CameraBatch& cameras) override {
    EXPECT_EQ(cameras.size(), x_t.size(0));
    EXPECT_TRUE(context.size(0) == x_t.size(0) || context.size(0) == 1);
    batch_sizes.push_back(x_t.size(0));
    at::Tensor a = schedule_.AlphaBar(t).view({-1, 1, 1, 1});
    at::Tensor x0 = base_ + context.reshape({-1, 1, 1, 1});
    return eps_scale_ * (x_t - a.sqrt() * x0) / (1 - a).sqrt();
  }

  // The image (in [0,1]) of context value c.
  at::Tensor Image(double c) const { return (base_ + c + 1) * 0.5; }

  std::vector<int64_t> batch_sizes;  // of every PredictNoise call

 private:
  double eps_scale_;
  NoiseSchedule schedule_ = NoiseSchedule::Linear();
  at::Tensor base_;
};

CameraBatch Cameras(int64_t n) {
  return OrbitCameras(at::full({n}, 0.2), at::linspace(0, 3, n), at::full({n}, 3.0), at::full({n}, 0.785));
}

at::Tensor Sample(DiffusionPrior& prior, const at::Tensor& context, int64_t batch, DdimOptions options, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return SampleDdim(prior, context, Cameras(batch), options, g);
}

TEST(Ddim, ExactNoiseReproducesTheImage) {
  for (int64_t steps : {1, 10, 50, 1000}) {
    for (double eta : {0.0, 1.0}) {
      KnownImagePrior prior;
      DdimOptions options;
      options.steps = steps;
      options.eta = eta;
      options.guidance_scale = 1;
      at::Tensor images = Sample(prior, *prior.EncodePrompt("x"), 3, options, 1);
      ASSERT_EQ(images.sizes(), (at::IntArrayRef{3, 3, kSize, kSize}));
      EXPECT_TRUE(at::allclose(images, prior.Image(0.4).expand({3, 3, kSize, kSize}), 0, 1e-4))
          << "steps " << steps << " eta " << eta << ": max error "
          << (images - prior.Image(0.4)).abs().max().item<float>();
      EXPECT_EQ(prior.batch_sizes.size(), static_cast<size_t>(steps));
    }
  }
}

TEST(Ddim, GuidanceScaleOneIsTheConditionalBranchInOneCall) {
  KnownImagePrior prior;
  DdimOptions options;
  options.steps = 20;
  options.guidance_scale = 1;
  at::Tensor images = Sample(prior, *prior.EncodePrompt("x"), 2, options, 2);
  EXPECT_TRUE(at::allclose(images, prior.Image(0.4).expand_as(images), 0, 1e-4));
  EXPECT_EQ(prior.batch_sizes, std::vector<int64_t>(20, 2));  // no unconditional branch at all
}

TEST(Ddim, GuidanceExtrapolatesFromTheEmptyPromptInOneBatchedCall) {
  // ε is affine in x0, so guided ε is the exact ε of x0_u + s·(x0_c − x0_u) = base + s·0.4.
  KnownImagePrior prior;
  DdimOptions options;
  options.steps = 20;
  options.guidance_scale = 1.5;
  at::Tensor images = Sample(prior, *prior.EncodePrompt("x"), 2, options, 3);
  EXPECT_TRUE(at::allclose(images, prior.Image(1.5 * 0.4).expand_as(images), 0, 1e-4))
      << (images - prior.Image(0.6)).abs().max().item<float>();
  EXPECT_EQ(prior.batch_sizes, std::vector<int64_t>(20, 4));  // both branches, one call per step
}

TEST(Ddim, PerSampleContextsAreKeptApart) {
  KnownImagePrior prior;
  DdimOptions options;
  options.steps = 10;
  options.guidance_scale = 1;
  at::Tensor images = Sample(prior, at::tensor({0.1f, 0.3f}).view({2, 1, 1}), 2, options, 4);
  EXPECT_TRUE(at::allclose(images[0], prior.Image(0.1)[0], 0, 1e-4));
  EXPECT_TRUE(at::allclose(images[1], prior.Image(0.3)[0], 0, 1e-4));
}

TEST(Ddim, DeterministicUnderASeed) {
  for (double eta : {0.0, 0.5}) {
    KnownImagePrior prior(/*eps_scale=*/0.5);  // wrong ε: the result depends on the noise
    DdimOptions options;
    options.steps = 10;
    options.eta = eta;
    at::Tensor context = *prior.EncodePrompt("x");
    at::Tensor a = Sample(prior, context, 2, options, 5), b = Sample(prior, context, 2, options, 5);
    at::Tensor c = Sample(prior, context, 2, options, 6);
    EXPECT_TRUE(at::equal(a, b)) << "eta " << eta;
    EXPECT_FALSE(at::allclose(a, c)) << "eta " << eta;
  }
}

TEST(Ddim, BadOptionsAreRejected) {
  KnownImagePrior prior;
  at::Tensor context = *prior.EncodePrompt("x");
  DdimOptions options;
  options.steps = 0;
  EXPECT_THROW(Sample(prior, context, 1, options, 1), c10::Error);
  options.steps = 1001;
  EXPECT_THROW(Sample(prior, context, 1, options, 1), c10::Error);
  options.steps = 10;
  EXPECT_THROW(Sample(prior, at::zeros({3, 1, 1}), 2, options, 1), c10::Error);  // 3 contexts for 2 cameras
}

}  // namespace
}  // namespace psd3d
