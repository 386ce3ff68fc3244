// Score-distillation guidance for the 3D stages (../shared/docs/psd-method.md): turns renders of the
// current 3D state into a loss whose gradient w.r.t. the renders is the method's guidance. One class
// for every method so comparisons run the same engine, renders and seeds:
//   - SDS (DreamFusion): G = w(t)(ε̂ − ε), CFG against a fixed negative context.
//   - PSD: two noises at one t; the reward of each one-step prediction x̂₀ picks winner and loser;
//     G = w(t)[(ε̂ʷ − εʷ) + λ·s(Δr)·((ε̂ʷ − εʷ) − (ε̂ˡ − εˡ))]; the learnable negative context ψ (used in
//     every CFG call) follows the reward of the winner's one-step prediction (Proposition 1).
//   - PSD without ψ updates (the ablation).
//   - DreamDPO-style: per-view win mask, G = w(t)[(ε̂ʷ − εʷ) − (ε̂ˡ_text − εˡ)], falling back to the
//     winner's SDS term when the reward gap is under β.
//   - Reward gradient (DreamReward/ReFL-style): SDS plus −λ_r·R(render) through the reward's pixel
//     gradient (the "naive classifier guidance" PSD argues against).
// All prior calls of a step are one batched PredictNoise call (2 noises × 2 CFG branches × views).
// w(t) = 1 − ᾱ_t. The loss is ½‖z − sg(z − G)‖²/B, so ∂loss/∂z = G/B.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "worker/guidance/schedule.h"
#include "worker/models/diffusion_prior.h"
#include "worker/models/reward_model.h"

namespace psd3d {

enum class GuidanceMethod { kSds, kPsd, kPsdFixedNegative, kDreamDpo, kRewardGradient };
absl::string_view GuidanceMethodName(GuidanceMethod m);  // "sds", "psd", "psd_fixed_negative", "dreamdpo", "reward_gradient"
absl::StatusOr<GuidanceMethod> ParseGuidanceMethod(absl::string_view name);

// s(Δr) of the preference term.
enum class PreferenceScale { kOne, kClip, kTanh };  // 1 | clip(Δr/τ, 0, 1) | tanh(Δr/τ)
absl::StatusOr<PreferenceScale> ParsePreferenceScale(absl::string_view name);  // "one", "clip" or "tanh"

struct GuidanceConfig {
  GuidanceMethod method = GuidanceMethod::kPsd;
  std::string negative_prompt;  // "" = the empty prompt (ψ starts here)
  double guidance_scale = 7.5;  // ω of CFG
  // The timestep window, as fractions of the schedule, annealed over the stage's steps.
  ScalarSchedule t_min = ScalarSchedule::Constant(0.02);
  ScalarSchedule t_max = ScalarSchedule::Constant(0.98);

  // PSD.
  double lambda_pref = 1.0;
  PreferenceScale pref_scale = PreferenceScale::kTanh;
  double tau = 1.0;             // typical reward gap of the reward in use
  double pref_gate = 0.0;       // drop the preference term when Δr < pref_gate
  bool per_view_winner = false; // false: winner by the mean reward over the views (one object)
  bool loser_uses_cfg = true;   // false: the loser's text-only prediction
  // The preference term only at t ≤ pref_t_max (a fraction of the schedule); above it the step is the
  // winner's SDS term alone. 1 (default): at every t. At large t the one-step predictions are blurry,
  // and the tiny world's rewards prefer the darker of two blurry objects (docs/results.md).
  double pref_t_max = 1.0;
  // ψ (PSD only): Adam with lr psi_lr every psi_every steps once step ≥ psi_warmup, when t ≤ t_feedback.
  double psi_lr = 1e-3;
  int64_t psi_every = 1;
  int64_t psi_warmup = 0;
  int64_t t_feedback = 500;
  // Where ψ's gradient comes from. false: a forward of its own (prior with ψ, decode, reward) on the
  // winner's noised latents, then its backward. true: the ranking's forward, run with autograd on ψ,
  // whose winner rows are that same function, so one backward gives the same gradient without the
  // second forward. That holds for priors and rewards that treat every batch row on its own (the tiny
  // pack); a multi-view prior that attends across a group's views (MVDream) gives a different gradient
  // with per_view_winner. The backward spans all 4·B prior rows and 2·B reward rows (the separate
  // update: B and B), whose activations live until the update: fewer launches, more FLOPs and memory,
  // so it pays where calls are launch-bound (the GPU presets), not on the CPU.
  bool psi_from_ranking = false;
  // On CUDA, replay the step's prior work (the batched prior call, the ranking's rewards and ψ's
  // backward) as CUDA graphs, one per input shape (worker/render/cuda_graph.h): the tiny prior's calls
  // are launch-bound, and a replay costs a fraction of issuing them (H100: whole STANDARD job 1.7× faster
  // for SDS, 2.1× for PSD; docs/results.md). Replays match eager steps (tests/guidance/
  // guidance_gpu_test.cc); on the CPU the function runs directly either way. Off: the same function
  // of tensors runs eagerly (for a prior or reward that cannot be captured).
  bool cuda_graphs = true;

  // DreamDPO: the reward gap under which the winner's SDS term is used alone.
  double dpo_beta = 0.0;
  // Reward gradient: weight of −R(render) in the loss.
  double reward_weight = 1.0;
  // |G| clamp per element (0: off); NaN/Inf in G are zeroed either way.
  double grad_clamp = 0.0;
};

// What one step did, for progress events and tests.
struct GuidanceStats {
  int64_t t = 0;
  double reward_win = 0, reward_lose = 0;  // mean over views of the winner's / loser's x̂₀ rewards
  double pref_weight = 0;                  // λ·s(Δr) (mean over views)
  double render_reward = 0;                // reward of the renders (reward-gradient method)
  bool psi_updated = false;
  double psi_reward = 0;  // reward of the ψ-update's one-step prediction
  double psi_grad_norm = 0;  // ‖∂(−psi_reward)/∂ψ‖₂ before Adam (0 without a ψ update): a vanishing or
                             // exploding ψ signal shows here first
  int64_t prior_calls = 0;  // PredictNoise calls this step (1, or 2 with a separate ψ update)
  bool graph_replay = false;  // the step's prior work was replayed from a CUDA graph (cuda_graphs)

  // The rewards and weights above stay on the device until the step reads them back with its loss
  // (one copy per step: a read in mid-step would make the host wait for the GPU). `pending` holds
  // [reward_win, reward_lose, pref_weight, psi_reward, psi_grad_norm, render_reward] (undefined for
  // SDS); Resolve() copies it into the fields, or Resolve(host) takes the six values already copied.
  at::Tensor pending;
  void Resolve();
  void Resolve(const at::Tensor& host);
};

class Guidance {
 public:
  // The prompt is encoded once (INVALID_ARGUMENT for unreadable prompts). PSD, DreamDPO and the
  // reward-gradient method need a reward model; SDS ignores it.
  static absl::StatusOr<std::unique_ptr<Guidance>> Create(DiffusionPrior& prior, RewardModel* reward,
                                                          const std::string& prompt, const GuidanceConfig& config);
  ~Guidance();

  // The loss for renders `images` [B,3,H,W] in [0,1] (differentiable w.r.t. the 3D parameters) seen from
  // `cameras`, at `step` of the stage. Draws t and the noises from `generator` (CPU), so a run is
  // deterministic under a seed. May update ψ (PSD). `stats` may be null; its rewards need Resolve().
  at::Tensor Loss(const at::Tensor& images, const CameraBatch& cameras, int64_t step, at::Generator& generator,
                  GuidanceStats* stats = nullptr);

  // ψ [1,L,D] (the negative context every CFG call uses).
  const at::Tensor& negative_context() const;
  // Everything a checkpoint needs to resume the same trajectory (ψ and its optimizer state).
  std::map<std::string, at::Tensor> State() const;
  absl::Status LoadState(const std::map<std::string, at::Tensor>& state);

  const GuidanceConfig& config() const;

 private:
  struct Impl;
  explicit Guidance(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
