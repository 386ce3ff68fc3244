// The tiny reward: prompts, resizing, image gradients, the pack round trip, a short CPU training run
// that learns to rank a correct render above a wrong-color one, and the gradient color check.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

#include <torch/optim/adam.h>

#include "common/file_io.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d::tinyworld {
namespace {

RewardNetConfig TinyConfig() {
  RewardNetConfig c;  // vocab_size and max_length 0: the tokenizer's
  c.width = 8;
  c.text_dim = 16;
  return c;
}

std::unique_ptr<TinyReward> Tiny(uint64_t seed = 1) {
  absl::StatusOr<std::unique_ptr<TinyReward>> r = TinyReward::Create(TinyConfig(), at::kCPU, seed);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

std::string FreshDir(const std::string& name) {
  const std::string dir = testing::TempDir() + "/tiny_reward_test_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

// Renders of `subject` in `color` from 4 of the judge's views.
at::Tensor Renders(const Subject& subject, Color color) {
  Scene s = SubjectScene(subject, 0.3f);
  s.objects[0].rgb = ColorRgb(color);
  CameraBatch all = JudgeCameras();
  return RenderScenes(std::vector<Scene>(4, s), WorldCameras(all.elevation.narrow(0, 0, 4), all.azimuth.narrow(0, 0, 4)));
}

TEST(TinyReward, PromptErrorsNameTheUnknownWord) {
  auto reward = Tiny();
  absl::StatusOr<at::Tensor> bad = reward->EncodePrompt("a red dragon");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'dragon'"), std::string::npos) << bad.status();
  absl::StatusOr<at::Tensor> good = reward->EncodePrompt("a photo of a red cube");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->sizes(), (at::IntArrayRef{1, 16}));
}

TEST(TinyReward, ScoreResizesOtherImageSizes) {
  auto reward = Tiny();
  at::Tensor prompt = *reward->EncodePrompt("a blue cone");
  at::Tensor images = Renders({Color::kBlue, Shape::kCone}, Color::kBlue);
  at::Tensor at64 = reward->Score(images, prompt);
  // A 2× nearest-neighbour upscale box-filters back to the same image: the same scores.
  at::Tensor big = images.repeat_interleave(2, 2).repeat_interleave(2, 3);
  EXPECT_TRUE(at::allclose(reward->Score(big, prompt), at64, 1e-5, 1e-5));
  at::Tensor odd = reward->Score(at::rand({2, 3, 96, 96}), prompt);
  EXPECT_EQ(odd.sizes(), (at::IntArrayRef{2}));
  EXPECT_TRUE(at::isfinite(odd).all().item<bool>());
}

TEST(TinyReward, SaveLoadRoundTripsAndLoadedWeightsAreFrozen) {
  auto reward = Tiny(5);
  const std::string dir = FreshDir("roundtrip");
  JsonValue training = JsonValue::Object(), metrics = JsonValue::Object();
  training.Set("steps", JsonValue::Int(0));
  ASSERT_TRUE(reward->Save(dir, "reward", training, metrics, at::kFloat).ok());
  absl::StatusOr<std::unique_ptr<TinyReward>> loaded = TinyReward::Load(dir, "reward", at::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  at::Tensor images = Renders({Color::kRed, Shape::kTorus}, Color::kRed);
  at::Tensor p0 = *reward->EncodePrompt("a red torus"), p1 = *(*loaded)->EncodePrompt("a red torus");
  EXPECT_TRUE(at::equal(p0, p1));
  EXPECT_TRUE(at::equal(reward->Score(images, p0), (*loaded)->Score(images, p1)));
  for (const at::Tensor& p : (*loaded)->net().parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_EQ((*loaded)->net().config().ToJson().Dump(), reward->net().config().ToJson().Dump());
  EXPECT_EQ((*loaded)->tokenizer().words(), Tokenizer::TinyWorld().words());

  // The shipped F16 weights score within rounding of the F32 ones, and reload bit for bit.
  ASSERT_TRUE(reward->Save(dir, "reward_eval", training, metrics).ok());
  auto half1 = *TinyReward::Load(dir, "reward_eval", at::kCPU), half2 = *TinyReward::Load(dir, "reward_eval", at::kCPU);
  at::Tensor s_half = half1->Score(images, p0);
  EXPECT_TRUE(at::equal(s_half, half2->Score(images, p0)));
  EXPECT_TRUE(at::allclose(s_half, reward->Score(images, p0), 1e-2, 1e-2));
  // Both entries live in one manifest.
  EXPECT_TRUE(ReadModelEntry(dir, "reward").ok());
  EXPECT_TRUE(ReadModelEntry(dir, "reward_eval").ok());
}

TEST(TinyReward, LoadErrorsNameWhatIsWrong) {
  const std::string dir = FreshDir("errors");
  EXPECT_FALSE(TinyReward::Load(dir, "reward", at::kCPU).ok());
  auto reward = Tiny();
  ASSERT_TRUE(reward->Save(dir, "reward", JsonValue::Object(), JsonValue::Object()).ok());
  // An architecture that does not match the weights never half-loads.
  JsonValue entry = *ReadModelEntry(dir, "reward");
  RewardNetConfig wider = TinyConfig();
  wider.vocab_size = Tokenizer::TinyWorld().vocab_size();
  wider.max_length = Tokenizer::TinyWorld().max_length();
  wider.width = 12;
  JsonValue edited = JsonValue::Object();
  for (size_t i = 0; i < entry.keys().size(); ++i)
    edited.Set(entry.keys()[i], entry.keys()[i] == "architecture" ? wider.ToJson() : entry.items()[i]);
  ASSERT_TRUE(WriteModelEntry(dir, "reward", edited).ok());
  absl::StatusOr<std::unique_ptr<TinyReward>> bad = TinyReward::Load(dir, "reward", at::kCPU);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("shape"), std::string::npos) << bad.status();
}

TEST(TinyReward, ImageGradientsOfALoadedRewardExistAndAreFinite) {
  const std::string dir = FreshDir("gradient");
  ASSERT_TRUE(Tiny(2)->Save(dir, "reward", JsonValue::Object(), JsonValue::Object()).ok());
  auto reward = *TinyReward::Load(dir, "reward", at::kCPU);
  at::Tensor prompt = *reward->EncodePrompt("one yellow pyramid");
  at::Tensor images = Renders({Color::kYellow, Shape::kPyramid}, Color::kGreen).requires_grad_(true);
  reward->Score(images, prompt).sum().backward();
  ASSERT_TRUE(images.grad().defined());
  EXPECT_TRUE(at::isfinite(images.grad()).all().item<bool>());
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0);
}

TEST(TinyReward, BradleyTerryLossIsLogisticInTheMargin) {
  at::Tensor w = at::tensor({2.0f, 0.0f}), l = at::tensor({0.0f, 0.0f});
  const double expected = (std::log1p(std::exp(-2.0)) + std::log(2.0)) / 2;
  EXPECT_NEAR(BradleyTerryLoss(w, l, 0).item<double>(), expected, 1e-6);
  EXPECT_NEAR(BradleyTerryLoss(w, l, 0.5).item<double>(), expected + 0.5 * 0.5 * (4.0 / 2), 1e-6);
}

// A few dozen CPU steps on wrong-color pairs of four subjects: the reward learns to prefer the
// prompt's color, on fresh pairs it never saw.
TEST(TinyReward, ShortTrainingRanksTheCorrectColorAboveAWrongOne) {
  auto reward = Tiny(3);
  PairOptions options;
  options.subjects = {{Color::kRed, Shape::kCube}, {Color::kBlue, Shape::kSphere}, {Color::kGreen, Shape::kCone},
                      {Color::kYellow, Shape::kTorus}};
  options.kinds = {Degradation::kWrongColor};
  options.graded_fraction = 0;
  options.same_view_fraction = 1;
  options.render.supersample = 1;
  at::Generator gen = at::detail::createCPUGenerator(7);
  const PreferencePairs train = MakePreferencePairs(96, options, gen, at::kCPU);
  at::Generator fresh_gen = at::detail::createCPUGenerator(8);
  const PreferencePairs fresh = MakePreferencePairs(64, options, fresh_gen, at::kCPU);
  const double before = PairMargins(*reward, fresh).gt(0).to(at::kFloat).mean().item<double>();

  torch::optim::Adam adam(reward->net().parameters(), torch::optim::AdamOptions(3e-3));
  constexpr int64_t kBatch = 16;
  for (int step = 0; step < 36; ++step) {
    const int64_t begin = (step * kBatch) % train.size();
    at::Tensor w = reward->ScoreIds(train.winners.narrow(0, begin, kBatch), train.prompt_ids.narrow(0, begin, kBatch));
    at::Tensor l = reward->ScoreIds(train.losers.narrow(0, begin, kBatch), train.prompt_ids.narrow(0, begin, kBatch));
    at::Tensor loss = BradleyTerryLoss(w, l);
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  const double after = PairMargins(*reward, fresh).gt(0).to(at::kFloat).mean().item<double>();
  EXPECT_GE(after, 0.85) << "before training: " << before;
  // And on a plain render pair: the prompt's color beats the others, view by view.
  at::Tensor prompt = *reward->EncodePrompt("a red cube");
  at::Tensor right = reward->Score(Renders({Color::kRed, Shape::kCube}, Color::kRed), prompt);
  at::Tensor wrong = reward->Score(Renders({Color::kRed, Shape::kCube}, Color::kBlue), prompt);
  EXPECT_TRUE(right.gt(wrong).all().item<bool>()) << right << wrong;
  // Its image gradient already pulls a wrong-color render toward the prompt's color.
  absl::StatusOr<GradientColorCheckResult> check = GradientColorCheck(*reward, {Color::kRed, Shape::kCube}, Color::kBlue);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->MovedTowardPrompt()) << check->delta_e_before << " → " << check->delta_e_after;
  EXPECT_GT(check->score_after, check->score_before);
}

// A reward whose score is −(distance of every pixel to a target color)²: its gradient pulls pixels
// straight toward the target, so the check must see the color move.
class TargetColorReward : public RewardModel {
 public:
  explicit TargetColorReward(Rgb target) : target_(at::tensor({target[0], target[1], target[2]}).view({1, 3, 1, 1})) {}
  std::string name() const override { return "target-color"; }
  at::Device device() const override { return at::kCPU; }
  int64_t image_size() const override { return 64; }
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string&) override { return at::zeros({1, 1}); }
  at::Tensor Score(const at::Tensor& images, const at::Tensor&) override {
    return -(images - target_).pow(2).mean({1, 2, 3});
  }

 private:
  at::Tensor target_;
};

TEST(TinyReward, GradientColorCheckSeesAGradientThatPullsTowardThePromptColor) {
  const Subject subject{Color::kGreen, Shape::kCylinder};
  TargetColorReward toward(ColorRgb(Color::kGreen)), away(ColorRgb(Color::kPurple));
  absl::StatusOr<GradientColorCheckResult> r = GradientColorCheck(toward, subject, Color::kRed);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->delta_e_before, 40);  // red vs green
  EXPECT_LT(r->delta_e_after, r->delta_e_before - 10);
  EXPECT_GT(r->score_after, r->score_before);
  EXPECT_TRUE(r->MovedTowardPrompt());
  // A reward that wants another color fails the check.
  absl::StatusOr<GradientColorCheckResult> wrong = GradientColorCheck(away, subject, Color::kRed);
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(wrong->MovedTowardPrompt());
  EXPECT_FALSE(GradientColorCheck(toward, subject, Color::kGreen).ok());
}

}  // namespace
}  // namespace psd3d::tinyworld
