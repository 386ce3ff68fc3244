// Guidance on test doubles with known answers: a prior whose one-step prediction is exactly
// (mean of the context) × target, and a reward that prefers images near the target. Then SDS and PSD
// with the shipped tiny pack on a directly optimized image.
#include <cmath>

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "worker/guidance/guidance.h"
#include "worker/tinyworld/judge.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d {
namespace {

constexpr int64_t kSize = 8;

at::Tensor Target() { return at::linspace(-0.8, 0.8, 3 * kSize * kSize).view({1, 3, kSize, kSize}); }

// x̂₀ = mean(context)·target (+ κ·x_t, an imperfection that makes two noise draws disagree).
class FakePrior : public DiffusionPrior {
 public:
  explicit FakePrior(double kappa = 0) : kappa_(kappa), schedule_(NoiseSchedule::Linear()) {}
  std::string name() const override { return "fake"; }
  at::Device device() const override { return at::kCPU; }
  int64_t image_size() const override { return kSize; }
  const NoiseSchedule& schedule() const override { return schedule_; }
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string& prompt) override {
    if (prompt != "target") return absl::InvalidArgumentError("unknown word '" + prompt + "'");
    return at::ones({1, 2, 4});
  }
  at::Tensor EmptyContext() override { return at::zeros({1, 2, 4}); }
  at::Tensor Encode(const at::Tensor& images) override { return images * 2 - 1; }
  at::Tensor Decode(const at::Tensor& latents) override { return (latents + 1) / 2; }
  at::Tensor PredictNoise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& context,
                          const CameraBatch& cameras) override {
    ++calls;
    batch_sizes.push_back(x_t.size(0));
    EXPECT_EQ(cameras.size(), x_t.size(0));
    at::Tensor a = schedule_.AlphaBar(t).view({-1, 1, 1, 1});
    at::Tensor x0 = context.mean({1, 2}).view({-1, 1, 1, 1}) * Target() + kappa_ * x_t;
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt();
  }
  int calls = 0;
  std::vector<int64_t> batch_sizes;

 private:
  double kappa_;
  NoiseSchedule schedule_;
};

// −mean squared distance to the target image.
class FakeReward : public RewardModel {
 public:
  std::string name() const override { return "fake-reward"; }
  at::Device device() const override { return at::kCPU; }
  int64_t image_size() const override { return kSize; }
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string&) override { return at::zeros({1}); }
  at::Tensor Score(const at::Tensor& images, const at::Tensor&) override {
    return -(images - (Target() + 1) / 2).pow(2).mean({1, 2, 3});
  }
};

CameraBatch Cams(int64_t n) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  return tinyworld::SampleWorldCameras(n, gen);
}

// Gradient descent on the image itself, the simplest "3D" parameterization.
std::vector<double> Optimize(Guidance& g, at::Tensor& image, int steps, double lr, uint64_t seed,
                             std::vector<GuidanceStats>* stats = nullptr) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  CameraBatch cams = Cams(image.size(0));
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    at::Tensor x = image.detach().set_requires_grad(true);
    GuidanceStats st;
    at::Tensor loss = g.Loss(x, cams, i, gen, &st);
    // Rewards stay on the device until read back (SDS has none).
    EXPECT_EQ(st.pending.defined(), g.config().method != GuidanceMethod::kSds);
    st.Resolve();
    EXPECT_FALSE(st.pending.defined());
    loss.backward();
    image = (x - lr * x.grad()).detach().clamp(0, 1);
    losses.push_back(loss.item<double>());
    if (stats) stats->push_back(st);
  }
  return losses;
}

double Distance(const at::Tensor& image) { return (image - (Target() + 1) / 2).abs().mean().item<double>(); }

TEST(Schedule, ConstantsAndLinearRamps) {
  ScalarSchedule c = ScalarSchedule::Constant(0.5);
  EXPECT_EQ(c.At(0), 0.5);
  EXPECT_EQ(c.At(1000), 0.5);
  auto r = ScalarSchedule::FromList({100, 0.98, 0.5, 300});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->At(0), 0.98);
  EXPECT_NEAR(r->At(200), 0.74, 1e-12);
  EXPECT_EQ(r->At(500), 0.5);
  EXPECT_FALSE(ScalarSchedule::FromList({1, 2}).ok());
  EXPECT_FALSE(ScalarSchedule::FromList({300, 1, 0, 100}).ok());
  EXPECT_FALSE(ScalarSchedule::FromList({-1, 1, 0, 100}).ok());
  EXPECT_FALSE(ScalarSchedule::FromList({0.5, 1, 0, 100}).ok());
}

TEST(Guidance, CreateChecksItsInputs) {
  FakePrior prior;
  FakeReward reward;
  GuidanceConfig c;
  EXPECT_EQ(Guidance::Create(prior, nullptr, "target", c).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(Guidance::Create(prior, &reward, "dragon", c).status().message()).find("dragon"),
            std::string::npos);
  c.method = GuidanceMethod::kSds;
  EXPECT_TRUE(Guidance::Create(prior, nullptr, "target", c).ok());
  for (auto m : {GuidanceMethod::kSds, GuidanceMethod::kPsd, GuidanceMethod::kPsdFixedNegative,
                 GuidanceMethod::kDreamDpo, GuidanceMethod::kRewardGradient})
    EXPECT_EQ(*ParseGuidanceMethod(GuidanceMethodName(m)), m);
  EXPECT_FALSE(ParseGuidanceMethod("vsd").ok());
}

TEST(Guidance, SdsPullsTheImageTowardThePriorsPrediction) {
  FakePrior prior;
  GuidanceConfig c;
  c.method = GuidanceMethod::kSds;
  c.guidance_scale = 1.0;  // x̂₀ of the text branch alone: the target
  auto g = Guidance::Create(prior, nullptr, "target", c);
  ASSERT_TRUE(g.ok());
  at::Tensor image = at::full({2, 3, kSize, kSize}, 0.5);
  const double before = Distance(image);
  Optimize(**g, image, 60, 0.5, 1);
  EXPECT_LT(Distance(image), 0.1 * before);
  EXPECT_EQ(prior.calls, 60);  // one batched call per step: 2 CFG branches × 2 views
  EXPECT_EQ(prior.batch_sizes.front(), 4);
}

TEST(Guidance, PsdBatchesEveryPriorCallAndPrefersTheWinner) {
  FakePrior prior(/*kappa=*/0.3);
  FakeReward reward;
  GuidanceConfig c;
  c.method = GuidanceMethod::kPsdFixedNegative;
  c.guidance_scale = 1.0;
  c.pref_scale = PreferenceScale::kOne;
  auto g = Guidance::Create(prior, &reward, "target", c);
  ASSERT_TRUE(g.ok());
  at::Tensor image = at::full({3, 3, kSize, kSize}, 0.5);
  std::vector<GuidanceStats> stats;
  Optimize(**g, image, 5, 0.2, 2, &stats);
  EXPECT_EQ(prior.calls, 5);
  EXPECT_EQ(prior.batch_sizes.front(), 12);  // 2 noises × 2 CFG branches × 3 views
  for (const GuidanceStats& s : stats) {
    EXPECT_GE(s.reward_win, s.reward_lose);
    EXPECT_EQ(s.pref_weight, 1.0);
    EXPECT_FALSE(s.psi_updated);
  }
}

// pref_t_max: above it the step is the winner's SDS term alone (weight 0), at or below it the term
// is used; the same draws with pref_t_max = 1 give the full term on every step.
TEST(Guidance, PreferenceTermOnlyAtOrBelowPrefTMax) {
  FakeReward reward;
  std::vector<std::vector<GuidanceStats>> runs;
  for (double pref_t_max : {1.0, 0.5}) {
    FakePrior prior(/*kappa=*/0.3);
    GuidanceConfig c;
    c.method = GuidanceMethod::kPsdFixedNegative;
    c.guidance_scale = 1.0;
    c.pref_scale = PreferenceScale::kOne;
    c.pref_t_max = pref_t_max;
    auto g = Guidance::Create(prior, &reward, "target", c);
    ASSERT_TRUE(g.ok());
    at::Tensor image = at::full({2, 3, kSize, kSize}, 0.5);
    runs.emplace_back();
    Optimize(**g, image, 30, 0.0, 8, &runs.back());  // images frozen: the same t draws in both runs
  }
  const int64_t limit = std::llround(0.5 * NoiseSchedule::Linear().num_steps());
  int above = 0, below = 0;
  for (size_t i = 0; i < runs[0].size(); ++i) {
    ASSERT_EQ(runs[0][i].t, runs[1][i].t);
    EXPECT_EQ(runs[0][i].pref_weight, 1.0);
    const bool on = runs[1][i].t <= limit;
    EXPECT_EQ(runs[1][i].pref_weight, on ? 1.0 : 0.0) << "t " << runs[1][i].t;
    (on ? below : above)++;
  }
  EXPECT_GT(above, 0);
  EXPECT_GT(below, 0);
  FakePrior prior;
  GuidanceConfig bad;
  bad.pref_t_max = 0;
  EXPECT_EQ(Guidance::Create(prior, &reward, "target", bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Guidance, PsiFollowsTheRewardOfTheWinnersPrediction) {
  FakePrior prior;
  FakeReward reward;
  GuidanceConfig c;
  c.method = GuidanceMethod::kPsd;
  c.guidance_scale = 3.0;  // x̂₀ = (3 − 2·mean ψ)·target: the reward wants mean ψ → 1
  c.psi_lr = 0.05;
  c.t_feedback = 1000;
  auto g = Guidance::Create(prior, &reward, "target", c);
  ASSERT_TRUE(g.ok());
  at::Tensor image = at::full({2, 3, kSize, kSize}, 0.5);
  std::vector<GuidanceStats> stats;
  Optimize(**g, image, 20, 0.0, 3, &stats);  // images frozen: only ψ moves
  EXPECT_GT((*g)->negative_context().mean().item<double>(), 0.5);
  EXPECT_TRUE(stats.back().psi_updated);
  EXPECT_GT(stats.back().psi_reward, stats.front().psi_reward);
  EXPECT_EQ(stats.back().prior_calls, 2);
}

// The ψ gradient's scale, not only its direction (Adam's step hides a constant factor): with κ = 0 and
// guidance scale s, x̂₀ = m·target with m = (1 − s)·mean ψ + s, so R = −(m − 1)²/4 · mean(target²) and
// ‖∂(−R)/∂ψ‖ = |m − 1|/2 · mean(target²) · |1 − s|/8 · √8 over ψ's 8 entries.
TEST(Guidance, PsiGradientNormMatchesTheAnalyticGradient) {
  const double mean_t2 = Target().pow(2).mean().item<double>();
  for (bool from_ranking : {false, true}) {
    FakePrior prior;
    FakeReward reward;
    GuidanceConfig c;
    c.method = GuidanceMethod::kPsd;
    c.guidance_scale = 0.5;  // m = 0.5 at ψ = 0: no clamping of the decoded image
    c.psi_lr = 0.05;
    c.t_feedback = 1000;
    c.psi_from_ranking = from_ranking;
    auto g = Guidance::Create(prior, &reward, "target", c);
    ASSERT_TRUE(g.ok());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const at::Tensor image = at::full({2, 3, kSize, kSize}, 0.5);
    for (int step = 0; step < 4; ++step) {
      const double m = (1 - c.guidance_scale) * (*g)->negative_context().mean().item<double>() + c.guidance_scale;
      GuidanceStats st;
      (*g)->Loss(image, Cams(2), step, gen, &st);
      st.Resolve();
      ASSERT_TRUE(st.psi_updated);
      const double expected = std::abs(m - 1) / 2 * mean_t2 * std::abs(1 - c.guidance_scale) / 8 * std::sqrt(8.0);
      EXPECT_NEAR(st.psi_grad_norm, expected, 1e-4 * expected) << from_ranking << " step " << step;
      EXPECT_NEAR(st.psi_reward, -(m - 1) * (m - 1) / 4 * mean_t2, 1e-6) << from_ranking << " step " << step;
    }
  }
}

TEST(Guidance, PsiFromTheRankingForwardIsTheSameUpdateWithOnePriorCall) {
  for (bool per_view : {false, true}) {
    std::vector<at::Tensor> psi, images;
    std::vector<std::vector<GuidanceStats>> stats(2);
    std::vector<int> calls;
    for (bool from_ranking : {false, true}) {
      FakePrior prior(/*kappa=*/0.3);  // the two draws disagree, so the winner matters
      FakeReward reward;
      GuidanceConfig c;
      c.method = GuidanceMethod::kPsd;
      c.guidance_scale = 3.0;
      c.psi_lr = 0.05;
      c.t_feedback = 1000;
      c.per_view_winner = per_view;
      c.psi_from_ranking = from_ranking;
      auto g = Guidance::Create(prior, &reward, "target", c);
      ASSERT_TRUE(g.ok());
      at::Tensor image = at::rand({3, 3, kSize, kSize}, at::make_generator<at::CPUGeneratorImpl>(4));
      Optimize(**g, image, 12, 0.2, 5, &stats[from_ranking]);
      psi.push_back((*g)->negative_context().clone());
      images.push_back(image);
      calls.push_back(prior.calls);
    }
    EXPECT_TRUE(at::allclose(psi[0], psi[1], 1e-5, 1e-6)) << per_view << ": " << (psi[0] - psi[1]).abs().max();
    EXPECT_TRUE(at::allclose(images[0], images[1], 1e-5, 1e-6)) << per_view;
    EXPECT_FALSE(at::allclose(psi[0], at::zeros_like(psi[0])));  // ψ did move
    for (size_t i = 0; i < stats[0].size(); ++i) {
      EXPECT_TRUE(stats[1][i].psi_updated);
      EXPECT_NEAR(stats[0][i].psi_reward, stats[1][i].psi_reward, 1e-5) << i;
      EXPECT_EQ(stats[0][i].prior_calls, 2);
      EXPECT_EQ(stats[1][i].prior_calls, 1);
    }
    EXPECT_EQ(calls[0], 24);
    EXPECT_EQ(calls[1], 12);
  }
}

TEST(Guidance, StateResumesTheSameTrajectory) {
  FakeReward reward;
  GuidanceConfig c;
  c.method = GuidanceMethod::kPsd;
  c.psi_lr = 0.05;
  c.t_feedback = 1000;
  FakePrior p1(0.2), p2(0.2);
  auto a = Guidance::Create(p1, &reward, "target", c);
  auto b = Guidance::Create(p2, &reward, "target", c);
  ASSERT_TRUE(a.ok() && b.ok());
  at::Tensor ia = at::full({2, 3, kSize, kSize}, 0.5), ib = ia.clone();
  Optimize(**a, ia, 3, 0.1, 4);
  ASSERT_TRUE((*b)->LoadState((*a)->State()).ok());
  ib = ia.clone();
  const std::vector<double> la = Optimize(**a, ia, 3, 0.1, 5), lb = Optimize(**b, ib, 3, 0.1, 5);
  EXPECT_EQ(la, lb);
  EXPECT_TRUE(at::equal(ia, ib));
  EXPECT_FALSE((*b)->LoadState({}).ok());
}

TEST(Guidance, BaselinesRunAndDiffer) {
  FakeReward reward;
  std::map<GuidanceMethod, at::Tensor> grads;
  for (auto m : {GuidanceMethod::kSds, GuidanceMethod::kDreamDpo, GuidanceMethod::kRewardGradient}) {
    FakePrior prior(0.3);
    GuidanceConfig c;
    c.method = m;
    auto g = Guidance::Create(prior, &reward, "target", c);
    ASSERT_TRUE(g.ok());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
    at::Tensor x = at::full({2, 3, kSize, kSize}, 0.3).set_requires_grad(true);
    GuidanceStats st;
    at::Tensor loss = (*g)->Loss(x, Cams(2), 0, gen, &st);
    st.Resolve();
    loss.backward();
    EXPECT_TRUE(x.grad().isfinite().all().item<bool>()) << GuidanceMethodName(m);
    grads[m] = x.grad();
    if (m == GuidanceMethod::kRewardGradient) EXPECT_LT(st.render_reward, 0);
  }
  EXPECT_FALSE(at::allclose(grads[GuidanceMethod::kSds], grads[GuidanceMethod::kRewardGradient]));
}

// The shipped tiny pack: SDS turns a gray image toward the prompt's color.
TEST(GuidanceTinyPack, SdsMovesAGrayImageTowardThePromptsColor) {
  auto prior = tinyworld::TinyPrior::Load(tinyworld::DefaultPackDir(), at::kCPU);
  ASSERT_TRUE(prior.ok()) << prior.status();
  GuidanceConfig c;
  c.method = GuidanceMethod::kSds;
  c.guidance_scale = 7.5;
  c.t_min = ScalarSchedule::Constant(0.2);
  c.t_max = ScalarSchedule::Constant(0.8);
  auto g = Guidance::Create(**prior, nullptr, "a red sphere", c);
  ASSERT_TRUE(g.ok());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  CameraBatch cams = tinyworld::JudgeCameras().index(0);
  at::Tensor image = at::full({1, 3, 64, 64}, 0.6);
  for (int i = 0; i < 25; ++i) {
    at::Tensor x = image.detach().set_requires_grad(true);
    (*g)->Loss(x, cams, i, gen).backward();
    image = (x - 0.1 * x.grad()).detach().clamp(0, 1);
  }
  // The image's centre turns red: red well above green and blue.
  at::Tensor centre = image.index({0, at::indexing::Slice(), at::indexing::Slice(24, 40), at::indexing::Slice(24, 40)})
                          .mean({1, 2});
  EXPECT_GT(centre[0].item<float>(), centre[1].item<float>() + 0.1) << centre;
  EXPECT_GT(centre[0].item<float>(), centre[2].item<float>() + 0.1) << centre;
}

// The same with the shipped models: the tiny prior and reward treat every batch row on its own, so
// the ranking forward's winner rows give ψ the gradient of the separate forward.
TEST(GuidanceTinyPack, PsiFromTheRankingForwardMatchesTheSeparateForward) {
  auto prior = tinyworld::TinyPrior::Load(tinyworld::DefaultPackDir(), at::kCPU);
  auto reward = tinyworld::TinyReward::Load(tinyworld::DefaultPackDir(), "reward", at::kCPU);
  ASSERT_TRUE(prior.ok() && reward.ok());
  std::vector<at::Tensor> psi;
  for (bool from_ranking : {false, true}) {
    GuidanceConfig c;
    c.method = GuidanceMethod::kPsd;
    c.t_feedback = 1000;
    c.psi_lr = 0.01;
    c.psi_from_ranking = from_ranking;
    auto g = Guidance::Create(**prior, reward->get(), "a red sphere", c);
    ASSERT_TRUE(g.ok());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
    const CameraBatch cams = tinyworld::SampleWorldCameras(2, gen);
    const at::Tensor image = at::rand({2, 3, 64, 64}, gen);
    for (int i = 0; i < 2; ++i) (*g)->Loss(image, cams, i, gen);
    psi.push_back((*g)->negative_context().clone());
  }
  const at::Tensor start = (*prior)->EmptyContext();
  EXPECT_GT((psi[0] - start).abs().max().item<double>(), 1e-3);  // two Adam steps of 0.01
  EXPECT_TRUE(at::allclose(psi[0], psi[1], 1e-4, 1e-5)) << (psi[0] - psi[1]).abs().max();
}

}  // namespace
}  // namespace psd3d
