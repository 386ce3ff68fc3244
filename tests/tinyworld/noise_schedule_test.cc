// The DDPM forward process: the schedules' shape and the noising identities samplers rely on.
#include <gtest/gtest.h>

#include "worker/models/noise_schedule.h"

namespace psd3d {
namespace {

TEST(NoiseSchedule, LinearMatchesDdpm) {
  NoiseSchedule s = NoiseSchedule::Linear();
  ASSERT_EQ(s.num_steps(), 1000);
  const at::Tensor a = s.alphas_cumprod;
  EXPECT_NEAR(a[0].item<float>(), 1 - 1e-4, 1e-7);
  EXPECT_TRUE(a.slice(0, 1).lt(a.slice(0, 0, -1)).all().item<bool>());  // strictly decreasing
  EXPECT_NEAR(a[999].item<float>(), 4.04e-5, 2e-6);                     // DDPM's ᾱ_T
  NoiseSchedule sd = NoiseSchedule::ScaledLinear();
  EXPECT_NEAR(sd.alphas_cumprod[999].item<float>(), 0.00466, 1e-4);      // Stable Diffusion's
}

TEST(NoiseSchedule, PredictX0InvertsAddNoise) {
  NoiseSchedule s = NoiseSchedule::Linear();
  at::manual_seed(0);
  at::Tensor x0 = at::rand({4, 3, 8, 8}) * 2 - 1, eps = at::randn({4, 3, 8, 8});
  at::Tensor t = at::tensor({0, 10, 500, 999}, at::kLong);
  at::Tensor xt = s.AddNoise(x0, eps, t);
  EXPECT_TRUE(at::allclose(s.PredictX0(xt, eps, t), x0, 1e-3, 1e-3));
  // Variance preserving: unit-variance data stays unit variance at every t.
  at::Tensor big = at::randn({3, 20000});
  at::Tensor xb = s.AddNoise(big, at::randn({3, 20000}), at::tensor({0, 300, 999}, at::kLong));
  EXPECT_TRUE(at::allclose(xb.std(1), at::ones({3}), 0, 0.03)) << xb.std(1);
  EXPECT_THROW(s.AlphaBar(at::tensor({1.0f})), c10::Error);
}

TEST(NoiseSchedule, SharedTimestepMatchesPerSampleTimesteps) {
  NoiseSchedule s = NoiseSchedule::Linear();
  at::manual_seed(1);
  at::Tensor x0 = at::randn({3, 4, 8, 8}), eps = at::randn({3, 4, 8, 8});
  for (int64_t t : {0, 137, 999}) {
    const at::Tensor ts = at::full({3}, t, at::kLong);
    EXPECT_TRUE(at::allclose(s.AddNoise(x0, eps, t), s.AddNoise(x0, eps, ts), 1e-6, 1e-7)) << t;
    EXPECT_TRUE(at::allclose(s.PredictX0(x0, eps, t), s.PredictX0(x0, eps, ts), 1e-6, 1e-7)) << t;
  }
  EXPECT_THROW(s.AddNoise(x0, eps, int64_t{1000}), c10::Error);
}

// The roots tensor (how a CUDA graph takes t as data) gives the host-scalar path's bits on the CPU.
TEST(NoiseSchedule, PredictX0FromRootsEqualsTheSharedTimestepPath) {
  NoiseSchedule s = NoiseSchedule::Linear();
  at::manual_seed(2);
  for (at::ScalarType type : {at::kFloat, at::kDouble}) {
    at::Tensor x = at::randn({2, 3, 8, 8}, type), eps = at::randn({2, 3, 8, 8}, type);
    for (int64_t t : {0, 500, 999}) {
      const at::Tensor roots = s.RootsAt(t);
      ASSERT_EQ(roots.scalar_type(), at::kFloat);
      EXPECT_FLOAT_EQ(roots[0].item<float>() * roots[0].item<float>(), s.AlphaBarAt(t));
      EXPECT_TRUE(at::equal(NoiseSchedule::PredictX0FromRoots(x, eps, roots), s.PredictX0(x, eps, t))) << t;
    }
  }
  EXPECT_THROW(NoiseSchedule::PredictX0FromRoots(at::zeros({1}), at::zeros({1}), at::zeros({3})), c10::Error);
}

}  // namespace
}  // namespace psd3d
