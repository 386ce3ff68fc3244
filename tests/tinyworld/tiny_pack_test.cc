// The shipped tiny pack (models/tiny): it loads on CPU, samples, and its reward prefers correct renders.
// These run in CI against the committed weights; the full acceptance numbers come from
// `psd3d-tinyworld eval-prior` / `eval-reward` on the GPU machine (docs/tiny-world.md).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "worker/models/ddim_sampler.h"
#include "worker/tinyworld/degrade.h"
#include "worker/tinyworld/judge.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d::tinyworld {
namespace {

class TinyPack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto prior = TinyPrior::Load(DefaultPackDir(), at::kCPU);
    ASSERT_TRUE(prior.ok()) << prior.status();
    prior_ = prior->release();
    auto reward = TinyReward::Load(DefaultPackDir(), "reward", at::kCPU);
    ASSERT_TRUE(reward.ok()) << reward.status();
    reward_ = reward->release();
  }
  static void TearDownTestSuite() {
    delete prior_;
    delete reward_;
  }
  static TinyPrior* prior_;
  static TinyReward* reward_;
};
TinyPrior* TinyPack::prior_ = nullptr;
TinyReward* TinyPack::reward_ = nullptr;

TEST_F(TinyPack, ManifestNamesEveryModel) {
  for (const char* key : {"prior", "reward", "reward_eval"}) {
    auto entry = ReadModelEntry(DefaultPackDir(), key);
    ASSERT_TRUE(entry.ok()) << entry.status();
    EXPECT_NE(entry->Find("training"), nullptr) << key;
    EXPECT_NE(entry->Find("metrics"), nullptr) << key;
  }
  EXPECT_TRUE(TinyReward::Load(DefaultPackDir(), "reward_eval", at::kCPU).ok());
  EXPECT_EQ(prior_->image_size(), 64);
  EXPECT_EQ(prior_->schedule().num_steps(), 1000);
}

TEST_F(TinyPack, TenStepSampleIsDeterministicAndLooksRight) {
  const Subject subject{Color::kRed, Shape::kCube};
  auto context = prior_->EncodePrompt(MakePrompt(subject));
  ASSERT_TRUE(context.ok());
  CameraBatch cams = JudgeCameras().index(0);
  DdimOptions options;
  options.steps = 10;
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(11), g2 = at::make_generator<at::CPUGeneratorImpl>(11);
  at::Tensor a = SampleDdim(*prior_, *context, cams, options, g1);
  at::Tensor b = SampleDdim(*prior_, *context, cams, options, g2);
  ASSERT_EQ(a.sizes(), (at::IntArrayRef{1, 3, 64, 64}));
  EXPECT_TRUE(at::equal(a, b));
  auto report = JudgeImages(a, cams, subject, JudgeMode::kPerImage);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->color_correct) << "ΔE " << report->mean_delta_e;
  EXPECT_TRUE(report->shape_correct) << ShapeName(report->shape) << " IoU " << report->mean_iou;
}

TEST_F(TinyPack, RewardPrefersCorrectRendersOverWrongColorAndFloaters) {
  const Subject subject{Color::kGreen, Shape::kTorus};
  CameraBatch cams = JudgeCameras().index(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const DegradeNoise noise = DrawDegradeNoise(gen);
  const std::array<float, 3> eye = {cams.position[0][0].item<float>(), cams.position[0][1].item<float>(),
                                    cams.position[0][2].item<float>()};
  std::vector<Scene> scenes = {SubjectScene(subject, 0.2f),
                               SubjectScene({Color::kBlue, Shape::kTorus}, 0.2f),
                               DegradedScene(subject, 0.2f, Degradation::kFloaters, 0.6f, noise, eye)};
  at::Tensor images = RenderScenes(scenes, cams.repeat(3));
  auto prompt = reward_->EncodePrompt(MakePrompt(subject));
  ASSERT_TRUE(prompt.ok());
  at::Tensor s1 = reward_->Score(images, *prompt), s2 = reward_->Score(images, *prompt);
  EXPECT_TRUE(at::equal(s1, s2));
  EXPECT_GT(s1[0].item<float>(), s1[1].item<float>()) << s1;
  EXPECT_GT(s1[0].item<float>(), s1[2].item<float>()) << s1;
}

TEST_F(TinyPack, RewardGradientMovesAWrongColorTowardThePrompt) {
  GradientColorCheckOptions options;
  options.views = 2;
  auto result = GradientColorCheck(*reward_, {Color::kRed, Shape::kSphere}, Color::kBlue, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->delta_e_after, result->delta_e_before - 5);
  EXPECT_GT(result->score_after, result->score_before);
}

}  // namespace
}  // namespace psd3d::tinyworld
