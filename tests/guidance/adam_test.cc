// The checkpointable Adam: same updates as torch::optim::Adam, and a saved state resumes bit for bit.
#include <gtest/gtest.h>

#include <torch/optim/adam.h>

#include "worker/optim/adam.h"

namespace psd3d {
namespace {

at::Tensor Loss(const at::Tensor& a, const at::Tensor& b) { return (a - 3).pow(2).sum() + (b * b).sum() * 0.5; }

TEST(Adam, MatchesTorchOptimAdam) {
  at::manual_seed(0);
  at::Tensor a0 = at::randn({5}), b0 = at::randn({2, 3});
  at::Tensor a = a0.clone().set_requires_grad(true), b = b0.clone().set_requires_grad(true);
  at::Tensor ta = a0.clone().set_requires_grad(true), tb = b0.clone().set_requires_grad(true);
  Adam ours({{{a}, 0.1}, {{b}, 0.01}}, AdamOptions{0.9, 0.99, 1e-15});
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{ta}, std::make_unique<torch::optim::AdamOptions>(0.1));
  groups.emplace_back(std::vector<at::Tensor>{tb}, std::make_unique<torch::optim::AdamOptions>(0.01));
  for (auto& g : groups) static_cast<torch::optim::AdamOptions&>(g.options()).betas({0.9, 0.99}).eps(1e-15);
  torch::optim::Adam theirs(std::move(groups));
  for (int i = 0; i < 20; ++i) {
    ours.ZeroGrad();
    Loss(a, b).backward();
    ours.Step();
    theirs.zero_grad();
    Loss(ta, tb).backward();
    theirs.step();
  }
  EXPECT_TRUE(at::allclose(a, ta, 1e-6, 1e-6)) << a << ta;
  EXPECT_TRUE(at::allclose(b, tb, 1e-6, 1e-6));
  EXPECT_EQ(ours.steps(), 20);
}

TEST(Adam, StateResumesBitForBit) {
  at::Tensor a = at::ones({4}).set_requires_grad(true), b = at::ones({4}).set_requires_grad(true);
  Adam first({{{a}, 0.05}}), second({{{b}, 0.05}});
  auto run = [](Adam& opt, at::Tensor& p, int steps) {
    for (int i = 0; i < steps; ++i) {
      opt.ZeroGrad();
      Loss(p, p).backward();
      opt.Step();
    }
  };
  run(first, a, 3);
  {
    c10::NoGradGuard no_grad;
    b.copy_(a);
  }
  ASSERT_TRUE(second.LoadState(first.State()).ok());
  run(first, a, 4);
  run(second, b, 4);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(second.LoadState({}).ok());
  auto bad = first.State();
  bad["m.0.0"] = at::zeros({3});
  EXPECT_FALSE(second.LoadState(bad).ok());
}

}  // namespace
}  // namespace psd3d
