// Guidance on the GPU with the shipped tiny pack: the step's prior work replayed as CUDA graphs gives the
// eager run's gradients, rewards and ψ gradients, step after step from the same state, for every
// method. Skips without CUDA.
#include <cmath>
#include <memory>

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <ATen/CPUGeneratorImpl.h>

#include "worker/guidance/guidance.h"
#include "worker/render/cuda_graph.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d {
namespace {

double RelErr(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.cpu().to(at::kDouble), y = b.cpu().to(at::kDouble);
  if (!at::isfinite(x).all().item<bool>() || !at::isfinite(y).all().item<bool>()) return 1e30;  // NaN never passes
  return ((x - y).abs().max() / (y.abs().max() + 1e-12)).item<double>();
}

// One step's results.
struct Step {
  at::Tensor image_grad;
  double reward = 0;         // reward_win + psi_reward + render_reward
  double psi_grad_norm = 0;  // 0 on steps without a ψ update
  bool replayed = false;
};

Step RunStep(Guidance& g, const at::Tensor& image, const CameraBatch& cams, int64_t step, at::Generator& gen) {
  at::Tensor x = image.clone().set_requires_grad(true);
  GuidanceStats st;
  g.Loss(x, cams, step, gen, &st).backward();
  st.Resolve();
  return {x.grad().clone(), st.reward_win + st.psi_reward + st.render_reward, st.psi_grad_norm, st.graph_replay};
}

// Eager and replayed guidance run in lockstep: before every step the replaying one is given the eager
// one's state (ψ and its Adam moments), so each step is compared from the same state. (Run apart, they
// drift: Adam's first steps move ψ by ±lr per entry, by the sign of its gradient, so an entry whose
// gradient is ~0 can flip on float rounding and move ψ by 2·lr.)
TEST(GuidanceGpu, GraphReplaysMatchEagerStepsForEveryMethod) {
  if (!torch::cuda::is_available() || !CudaGraphCall::Supported()) GTEST_SKIP() << "no CUDA";
  auto prior = tinyworld::TinyPrior::Load(tinyworld::DefaultPackDir(), at::kCUDA);
  auto reward = tinyworld::TinyReward::Load(tinyworld::DefaultPackDir(), "reward", at::kCUDA);
  ASSERT_TRUE(prior.ok() && reward.ok());
  struct Case {
    const char* name;
    GuidanceMethod method;
    int64_t t_feedback;     // 1000: ψ learns every step (one graph); 500: about half the steps (both graphs)
    bool psi_from_ranking;  // false: the graph's call, then the separate ψ update eagerly
  };
  const Case cases[] = {{"sds", GuidanceMethod::kSds, 1000, true},
                        {"psd", GuidanceMethod::kPsd, 1000, true},
                        {"psd, t_feedback 500", GuidanceMethod::kPsd, 500, true},
                        {"psd, separate psi update", GuidanceMethod::kPsd, 1000, false},
                        {"psd_fixed_negative", GuidanceMethod::kPsdFixedNegative, 1000, true},
                        {"dreamdpo", GuidanceMethod::kDreamDpo, 1000, true},
                        {"reward_gradient", GuidanceMethod::kRewardGradient, 1000, true}};
  constexpr int kSteps = 6;
  for (const Case& k : cases) {
    std::vector<std::unique_ptr<Guidance>> g;
    for (bool graphs : {false, true}) {
      GuidanceConfig c;
      c.method = k.method;
      c.t_feedback = k.t_feedback;
      c.psi_lr = 0.01;
      c.psi_from_ranking = k.psi_from_ranking;
      c.cuda_graphs = graphs;
      auto made = Guidance::Create(**prior, reward->get(), "a red sphere", c);
      ASSERT_TRUE(made.ok()) << made.status();
      g.push_back(*std::move(made));
    }
    auto setup = at::make_generator<at::CPUGeneratorImpl>(3);
    const CameraBatch cams = tinyworld::SampleWorldCameras(4, setup).to(at::kCUDA);
    const at::Tensor image = at::rand({4, 3, 64, 64}, setup).to(at::kCUDA);
    at::Generator gen[2] = {at::make_generator<at::CPUGeneratorImpl>(4), at::make_generator<at::CPUGeneratorImpl>(4)};
    int replays = 0, psi_steps = 0;
    for (int step = 0; step < kSteps; ++step) {
      ASSERT_TRUE(g[1]->LoadState(g[0]->State()).ok());
      const Step eager = RunStep(*g[0], image, cams, step, gen[0]);
      const Step replay = RunStep(*g[1], image, cams, step, gen[1]);
      EXPECT_FALSE(eager.replayed);
      replays += replay.replayed;
      psi_steps += eager.psi_grad_norm > 0;
      EXPECT_LT(RelErr(replay.image_grad, eager.image_grad), 1e-4) << k.name << " step " << step;
      EXPECT_NEAR(replay.reward, eager.reward, 1e-4 * (1 + std::abs(eager.reward))) << k.name << " step " << step;
      EXPECT_NEAR(replay.psi_grad_norm, eager.psi_grad_norm, 1e-4 * eager.psi_grad_norm + 1e-9)
          << k.name << " step " << step;
    }
    EXPECT_EQ(replays, kSteps) << k.name;
    if (k.method == GuidanceMethod::kPsd) EXPECT_GT(psi_steps, 0) << k.name;
  }
}

}  // namespace
}  // namespace psd3d
