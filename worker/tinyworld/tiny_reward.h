// The tiny world's reward model (docs/tiny-world.md, "The reward"): RewardNet behind the RewardModel
// interface, with its vocabulary, saved to and loaded from the model pack ("reward" guides PSD,
// "reward_eval", trained with another seed and width, only checks for reward hacking). Also the checks
// shared by eval-reward and the tests: pairwise margins on preference pairs, and whether the reward's
// image gradient pulls a wrong-color render toward the prompt's color.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/formats/json_lite.h"
#include "worker/models/reward_model.h"
#include "worker/tinyworld/degrade.h"
#include "worker/tinyworld/reward_net.h"
#include "worker/tinyworld/tokenizer.h"
#include "worker/tinyworld/world.h"

namespace psd3d::tinyworld {

class TinyReward : public RewardModel {
 public:
  // A freshly initialized, trainable model over Tokenizer::TinyWorld(); config.vocab_size and
  // max_length 0 take the tokenizer's, others must match it (INVALID_ARGUMENT otherwise).
  static absl::StatusOr<std::unique_ptr<TinyReward>> Create(RewardNetConfig config, const at::Device& device,
                                                            uint64_t seed = 0);
  // models[key] of the pack's manifest ("reward" or "reward_eval"): architecture, vocabulary and
  // weights; the weights are frozen (no gradients; image gradients still flow). NOT_FOUND without the
  // entry or file, INVALID_ARGUMENT when they do not match the architecture.
  static absl::StatusOr<std::unique_ptr<TinyReward>> Load(const std::string& pack_dir, const std::string& key,
                                                          const at::Device& device);
  // Writes <key>.safetensors (float weights as `dtype`) and the manifest entry {weights, architecture,
  // vocabulary, training, metrics}.
  absl::Status Save(const std::string& pack_dir, const std::string& key, const JsonValue& training,
                    const JsonValue& metrics, at::ScalarType dtype = at::kHalf) const;

  // RewardModel. EncodePrompt gives the prompt embedding [1,text_dim] (computed without gradients);
  // unknown words are INVALID_ARGUMENT naming the word. Score takes [B,3,H,W] square images of any size:
  // a multiple of image_size() is box-filtered down (like the renders' supersampling), other sizes are
  // resized bilinearly; prompt embeddings may be [1,D] (shared) or [B,D].
  std::string name() const override { return name_; }
  at::Device device() const override { return net_.device(); }
  int64_t image_size() const override { return net_.config().image_size; }
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string& prompt) override;
  at::Tensor Score(const at::Tensor& images, const at::Tensor& prompt) override;

  // Scores [B] of images at image_size() for token ids [B,L]; differentiable w.r.t. the weights too
  // (the training path).
  at::Tensor ScoreIds(const at::Tensor& images, const at::Tensor& ids) const;

  RewardNet& net() { return net_; }
  const RewardNet& net() const { return net_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  TinyReward(RewardNet net, Tokenizer tokenizer, std::string name);

  RewardNet net_;
  Tokenizer tokenizer_;
  std::string name_;
};

// The Bradley–Terry loss mean(−log σ(r_w − r_l)) of scores [B], plus score_decay · mean(r_w² + r_l²) / 2,
// which keeps the scores near 0 (the loss itself sees only differences, so they could drift).
at::Tensor BradleyTerryLoss(const at::Tensor& winner_scores, const at::Tensor& loser_scores, double score_decay = 1e-4);

// r(winner) − r(loser) [B] (float, CPU) for each pair, without gradients, in chunks of `chunk` pairs.
// Positive means the reward ranks the pair right.
at::Tensor PairMargins(const TinyReward& reward, const PreferencePairs& pairs, int64_t chunk = 256);

// Gradient ascent on the image of a wrong-color render: does the reward's gradient pull the object's
// color toward the one the prompt asks for? (docs/tiny-world.md: "give useful gradients".) The subject
// is rendered in `wrong_color` from `views` of the judge's cameras; each step adds step_size · g / rms(g)
// on the object's pixels (g = ∇ image of the score for the subject's prompt, rms over those pixels) and
// clamps to [0,1]. Color distance: CIELAB ΔE between the mean object color of the edited render and of
// the correct render from the same views (shading included, so 0 means "looks right"), averaged over
// views.
struct GradientColorCheckOptions {
  int steps = 20;
  double step_size = 0.01;  // sRGB units per step (per pixel RMS)
  int views = 4;            // the first `views` of JudgeCameras()
  float yaw = 0.3f;
};
struct GradientColorCheckResult {
  double delta_e_before = 0, delta_e_after = 0;  // ΔE to the correct render's mean object color
  double score_before = 0, score_after = 0;      // mean reward over the views
  bool MovedTowardPrompt() const { return delta_e_after < delta_e_before; }
};
// INVALID_ARGUMENT when wrong_color is the subject's own color or the options are out of range.
absl::StatusOr<GradientColorCheckResult> GradientColorCheck(RewardModel& reward, const Subject& subject,
                                                            Color wrong_color,
                                                            const GradientColorCheckOptions& options = {});

}  // namespace psd3d::tinyworld
