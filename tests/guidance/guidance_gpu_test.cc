// Guidance on the GPU with the shipped tiny pack: the step's prior work replayed as CUDA graphs gives the
// eager run's gradients, rewards and ψ, step after step, for every method. Skips without CUDA.
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

struct StepsRun {
  std::vector<at::Tensor> image_grads;
  std::vector<double> rewards;
  std::vector<double> psi_grad_norms;  // 0 on steps without a ψ update
  at::Tensor psi;
  int replays = 0;
};

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
    std::vector<StepsRun> runs;
    for (bool graphs : {false, true}) {
      GuidanceConfig c;
      c.method = k.method;
      c.t_feedback = k.t_feedback;
      c.psi_lr = 0.01;
      c.psi_from_ranking = k.psi_from_ranking;
      c.cuda_graphs = graphs;
      auto g = Guidance::Create(**prior, reward->get(), "a red sphere", c);
      ASSERT_TRUE(g.ok()) << g.status();
      auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
      const CameraBatch cams = tinyworld::SampleWorldCameras(4, gen).to(at::kCUDA);
      const at::Tensor image = at::rand({4, 3, 64, 64}, gen).to(at::kCUDA);
      StepsRun run;
      for (int step = 0; step < kSteps; ++step) {
        at::Tensor x = image.clone().set_requires_grad(true);
        GuidanceStats st;
        (*g)->Loss(x, cams, step, gen, &st).backward();
        st.Resolve();
        run.image_grads.push_back(x.grad().clone());
        run.rewards.push_back(st.reward_win + st.psi_reward + st.render_reward);
        run.psi_grad_norms.push_back(st.psi_grad_norm);
        run.replays += st.graph_replay;
      }
      run.psi = (*g)->negative_context().clone();
      runs.push_back(run);
    }
    EXPECT_EQ(runs[0].replays, 0) << k.name;
    EXPECT_EQ(runs[1].replays, kSteps) << k.name;
    for (int step = 0; step < kSteps; ++step) {
      EXPECT_LT(RelErr(runs[1].image_grads[step], runs[0].image_grads[step]), 1e-4) << k.name << " step " << step;
      EXPECT_NEAR(runs[1].rewards[step], runs[0].rewards[step], 1e-4 * (1 + std::abs(runs[0].rewards[step])))
          << k.name << " step " << step;
      const double norm = runs[0].psi_grad_norms[step];
      EXPECT_NEAR(runs[1].psi_grad_norms[step], norm, 1e-4 * norm + 1e-9) << k.name << " step " << step;
    }
    EXPECT_LT(RelErr(runs[1].psi, runs[0].psi), 1e-4) << k.name;
  }
}

}  // namespace
}  // namespace psd3d
