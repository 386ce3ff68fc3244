#include "worker/guidance/guidance.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <tuple>
#include <utility>

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include "absl/strings/str_cat.h"
#include "worker/optim/adam.h"
#include "worker/render/cuda_graph.h"
#include "worker/render/device_copy.h"

namespace psd3d {
namespace {

constexpr absl::string_view kMethodNames[] = {"sds", "psd", "psd_fixed_negative", "dreamdpo", "reward_gradient"};
constexpr absl::string_view kScaleNames[] = {"one", "clip", "tanh"};

bool NeedsReward(GuidanceMethod m) { return m != GuidanceMethod::kSds; }
bool TwoNoises(GuidanceMethod m) {
  return m == GuidanceMethod::kPsd || m == GuidanceMethod::kPsdFixedNegative || m == GuidanceMethod::kDreamDpo;
}

// [B] → [B,1,1,1] for per-view weights on latents.
at::Tensor PerView(const at::Tensor& v) { return v.view({-1, 1, 1, 1}); }

}  // namespace

absl::string_view GuidanceMethodName(GuidanceMethod m) { return kMethodNames[static_cast<int>(m)]; }

absl::StatusOr<GuidanceMethod> ParseGuidanceMethod(absl::string_view name) {
  for (size_t i = 0; i < std::size(kMethodNames); ++i)
    if (name == kMethodNames[i]) return static_cast<GuidanceMethod>(i);
  return absl::InvalidArgumentError(absl::StrCat("unknown guidance method '", name,
                                                 "' (sds, psd, psd_fixed_negative, dreamdpo, reward_gradient)"));
}

absl::StatusOr<PreferenceScale> ParsePreferenceScale(absl::string_view name) {
  for (size_t i = 0; i < std::size(kScaleNames); ++i)
    if (name == kScaleNames[i]) return static_cast<PreferenceScale>(i);
  return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not one, clip or tanh"));
}

struct Guidance::Impl {
  DiffusionPrior& prior;
  RewardModel* reward;
  GuidanceConfig config;
  at::Tensor text;          // y [1,L,D]
  at::Tensor psi;           // ψ [1,L,D]
  at::Tensor reward_text;   // the reward's prompt encoding
  std::unique_ptr<Adam> adam;  // over ψ alone; Adam(β 0.9/0.999, ε 1e-8)

  Impl(DiffusionPrior& p, RewardModel* r, GuidanceConfig c) : prior(p), reward(r), config(std::move(c)) {}

  // ε̂ predictions for latents z_t [N,...] of N/B noise draws (views repeated per draw): one batched call
  // over [z_t; z_t] with contexts [y; ψ]; returns (cfg, text-only).
  // `negative` is ψ (or a copy of it that autograd tracks).
  std::pair<at::Tensor, at::Tensor> Predict(const at::Tensor& z_t, const at::Tensor& t, const CameraBatch& cams,
                                            const at::Tensor& negative) {
    const int64_t n = z_t.size(0);
    at::Tensor ctx = at::cat({text.expand({n, -1, -1}), negative.expand({n, -1, -1})}, 0);
    at::Tensor eps = prior.PredictNoise(at::cat({z_t, z_t}, 0), at::cat({t, t}, 0), ctx, cams.repeat(2 * n / cams.size()));
    at::Tensor eps_y = eps.narrow(0, 0, n), eps_neg = eps.narrow(0, n, n);
    return {eps_neg + config.guidance_scale * (eps_y - eps_neg), eps_y};
  }

  at::Tensor OneStepImages(const at::Tensor& z_t, const at::Tensor& eps, const at::Tensor& roots) {
    return prior.Decode(NoiseSchedule::PredictX0FromRoots(z_t, eps, roots)).clamp(0, 1);
  }

  // The reward of each draw's one-step prediction, [2,B], for latents z_t [2B,...] of two draws.
  at::Tensor RankRewards(const at::Tensor& z_t, const at::Tensor& eps_cfg, const at::Tensor& roots) {
    return reward->Score(OneStepImages(z_t, eps_cfg, roots), reward_text).view({2, -1});
  }

  // Whether draw 0 wins, per view [B], from the ranking's rewards [2,B].
  at::Tensor Winner(const at::Tensor& r) const {
    if (config.method == GuidanceMethod::kDreamDpo || config.per_view_winner) return r[0] >= r[1];
    return (r[0].mean() >= r[1].mean()).expand({r.size(1)});
  }

  // The step's prior work on the device, a function of tensors only so that it can be replayed as a CUDA
  // graph (CoreInputs lists the inputs): the batched prior call → {ε̂_cfg, ε̂_text}; with two noises also
  // the ranking's rewards [2,B]; with `psi_grad` also ∂(−R̄ʷ)/∂ψ and R̄ʷ, the mean reward of the
  // winner's one-step prediction, from the ranking's forward run with autograd on ψ (Proposition 1).
  std::vector<at::Tensor> Core(const std::vector<at::Tensor>& in, bool psi_grad) {
    const at::Tensor &z_t = in[0], &t = in[1], &roots = in[2], &psi_in = in[3];
    CameraBatch cams{in[4], in[5], in[6], in[7], in[8], in[9], in[10], in[11], in[12]};
    if (!psi_grad) {
      c10::NoGradGuard no_grad;
      auto [eps_cfg, eps_text] = Predict(z_t, t, cams, psi_in);
      if (!TwoNoises(config.method)) return {eps_cfg, eps_text};
      return {eps_cfg, eps_text, RankRewards(z_t, eps_cfg, roots)};
    }
    c10::AutoGradMode track(true);
    at::Tensor psi_var = psi_in.detach().clone().set_requires_grad(true);
    auto [eps_cfg, eps_text] = Predict(z_t, t, cams, psi_var);
    at::Tensor ranked = RankRewards(z_t, eps_cfg, roots);
    at::Tensor win = Winner(ranked.detach());
    at::Tensor psi_reward = at::where(win, ranked[0], ranked[1]).mean();
    at::Tensor grad_psi = torch::autograd::grad({-psi_reward}, {psi_var})[0];
    return {eps_cfg.detach(), eps_text.detach(), ranked.detach(), grad_psi, psi_reward.detach()};
  }
  static std::vector<at::Tensor> CoreInputs(const at::Tensor& z_t, const at::Tensor& t, const at::Tensor& roots,
                                            const at::Tensor& psi, const CameraBatch& c) {
    return {z_t, t, roots, psi, c.c2w, c.w2c, c.proj, c.mvp, c.position, c.elevation, c.azimuth, c.distance, c.fovy};
  }

  // One Adam step on ψ; returns ‖grad_psi‖₂ (on the device) for the step's statistics.
  at::Tensor AdamOnPsi(const at::Tensor& grad_psi) {
    c10::NoGradGuard no_grad;
    at::Tensor g = grad_psi.nan_to_num(0, 0, 0);
    adam->Step({g});
    return g.norm();
  }

  // ψ ← Adam step on −mean R(x̂₀(z_tʷ; ψ)) (Proposition 1) with a forward of its own on the winner's
  // noised latents z_w and text prediction eps_y_w; the text branch is held fixed. Returns that mean
  // reward, detached, and the gradient's norm.
  std::pair<at::Tensor, at::Tensor> UpdatePsi(const at::Tensor& z_w, const at::Tensor& t, const at::Tensor& roots,
                                              const at::Tensor& eps_y_w, const CameraBatch& cams) {
    c10::AutoGradMode grad(true);
    at::Tensor psi_var = psi.detach().clone().set_requires_grad(true);
    at::Tensor eps_neg = prior.PredictNoise(z_w.detach(), t, psi_var.expand({z_w.size(0), -1, -1}), cams);
    at::Tensor eps = eps_neg + config.guidance_scale * (eps_y_w.detach() - eps_neg);
    at::Tensor r = reward->Score(OneStepImages(z_w.detach(), eps, roots), reward_text).mean();
    at::Tensor norm = AdamOnPsi(torch::autograd::grad({-r}, {psi_var})[0]);
    return {r.detach(), norm};
  }

  // The core as CUDA graphs on the GPU (cuda_graphs), eagerly elsewhere.
  std::unique_ptr<CudaGraphCall> core, core_psi;
};

Guidance::Guidance(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Guidance::~Guidance() = default;
const GuidanceConfig& Guidance::config() const { return impl_->config; }
const at::Tensor& Guidance::negative_context() const { return impl_->psi; }

absl::StatusOr<std::unique_ptr<Guidance>> Guidance::Create(DiffusionPrior& prior, RewardModel* reward,
                                                           const std::string& prompt, const GuidanceConfig& config) {
  if (NeedsReward(config.method) && reward == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("guidance ", GuidanceMethodName(config.method), " needs a reward model"));
  if (!(config.guidance_scale >= 0) || !(config.tau > 0) || config.psi_every < 1 || !(config.psi_lr >= 0) ||
      !(config.pref_t_max > 0 && config.pref_t_max <= 1))
    return absl::InvalidArgumentError(
        "guidance: guidance_scale ≥ 0, tau > 0, psi_every ≥ 1, psi_lr ≥ 0 and 0 < pref_t_max ≤ 1 required");
  auto impl = std::make_unique<Impl>(prior, reward, config);
  absl::StatusOr<at::Tensor> text = prior.EncodePrompt(prompt);
  if (!text.ok()) return text.status();
  impl->text = text->detach();
  if (config.negative_prompt.empty()) {
    impl->psi = prior.EmptyContext().detach().clone();
  } else {
    absl::StatusOr<at::Tensor> neg = prior.EncodePrompt(config.negative_prompt);
    if (!neg.ok()) return neg.status();
    impl->psi = neg->detach().clone();
  }
  Impl* self = impl.get();
  impl->core = std::make_unique<CudaGraphCall>([self](const auto& in) { return self->Core(in, false); },
                                               config.cuda_graphs);
  impl->core_psi = std::make_unique<CudaGraphCall>([self](const auto& in) { return self->Core(in, true); },
                                                   config.cuda_graphs);
  impl->adam = std::make_unique<Adam>(std::vector<AdamGroup>{{{impl->psi}, config.psi_lr}}, AdamOptions{0.9, 0.999, 1e-8});
  if (reward != nullptr) {
    absl::StatusOr<at::Tensor> r = reward->EncodePrompt(prompt);
    if (!r.ok()) return r.status();
    impl->reward_text = r->detach();
  }
  return std::unique_ptr<Guidance>(new Guidance(std::move(impl)));
}

at::Tensor Guidance::Loss(const at::Tensor& images, const CameraBatch& cameras, int64_t step, at::Generator& generator,
                          GuidanceStats* stats) {
  Impl& s = *impl_;
  const GuidanceConfig& c = s.config;
  TORCH_CHECK(images.dim() == 4 && images.size(0) == cameras.size(), "guidance: images [B,3,H,W] for B cameras");
  GuidanceStats local;
  GuidanceStats& st = stats != nullptr ? *stats : local;
  st = GuidanceStats{};
  const int64_t b = images.size(0);
  const auto dev = images.device();
  const NoiseSchedule& sched = s.prior.schedule();
  const int64_t steps = sched.num_steps();

  at::Tensor z = s.prior.Encode(images);
  // t uniform over the annealed window, one for the whole batch.
  const double lo = c.t_min.At(step), hi = std::max(lo, c.t_max.At(step));
  const int64_t t_lo = std::clamp<int64_t>(std::llround(lo * steps), 0, steps - 1);
  const int64_t t_hi = std::clamp<int64_t>(std::llround(hi * steps), t_lo, steps - 1);
  const int64_t t_int = t_lo + at::randint(t_hi - t_lo + 1, {1}, generator).item<int64_t>();
  st.t = t_int;
  const int draws = TwoNoises(c.method) ? 2 : 1;
  at::Tensor noise = ToDeviceAsync(at::randn({draws * b, z.size(1), z.size(2), z.size(3)}, generator), dev, z.scalar_type());
  at::Tensor t = at::full({draws * b}, t_int, at::TensorOptions().dtype(at::kLong).device(dev));
  const double w = 1.0 - sched.AlphaBarAt(t_int);

  const bool update_psi =
      c.method == GuidanceMethod::kPsd && step >= c.psi_warmup && step % c.psi_every == 0 && t_int <= c.t_feedback;
  const bool psi_in_ranking = update_psi && c.psi_from_ranking;
  at::Tensor grad;  // G on z, [B,...]
  at::Tensor z_t, eps_cfg, eps_text;
  {
    c10::NoGradGuard no_grad;
    at::Tensor zd = z.detach();
    z_t = sched.AddNoise(zd.repeat({draws, 1, 1, 1}), noise, t_int);
    const at::Tensor roots = ToDeviceAsync(sched.RootsAt(t_int), dev, z.scalar_type());
    CudaGraphCall& call = psi_in_ranking ? *s.core_psi : *s.core;
    const int64_t replays = call.replays();
    std::vector<at::Tensor> core = call(Impl::CoreInputs(z_t, t, roots, s.psi, cameras));
    st.graph_replay = call.replays() > replays;
    eps_cfg = core[0];
    eps_text = core[1];
    st.prior_calls = 1;
    if (draws == 1) {
      grad = w * (eps_cfg - noise);
    } else {
      const at::Tensor& r = core[2];
      at::Tensor win = s.Winner(r);  // whether draw 0 wins view i
      at::Tensor winf = PerView(win.to(z.scalar_type()));
      auto pick = [&](const at::Tensor& v, bool winner) {  // per view, draw of the winner or the loser
        at::Tensor v0 = v.narrow(0, 0, b), v1 = v.narrow(0, b, b);
        return winner ? winf * v0 + (1 - winf) * v1 : winf * v1 + (1 - winf) * v0;
      };
      at::Tensor r_w = at::where(win, r[0], r[1]), r_l = at::where(win, r[1], r[0]);
      at::Tensor gap = c.per_view_winner || c.method == GuidanceMethod::kDreamDpo ? r_w - r_l
                                                                                 : (r_w.mean() - r_l.mean()).expand({b});
      at::Tensor base = pick(eps_cfg, true) - pick(noise, true);
      at::Tensor pref_mean;  // mean λ·s(Δr) (PSD) or share of views using the preference (DreamDPO)
      at::Tensor loser_eps = c.loser_uses_cfg && c.method != GuidanceMethod::kDreamDpo ? pick(eps_cfg, false) : pick(eps_text, false);
      at::Tensor loser = loser_eps - pick(noise, false);
      if (c.method == GuidanceMethod::kDreamDpo) {
        // (ε̂ʷ − εʷ) − (ε̂ˡ_text − εˡ), or the winner's term alone when the gap is under β.
        at::Tensor use_pref = PerView((gap >= c.dpo_beta).to(z.scalar_type()));
        grad = w * (base - use_pref * loser);
        pref_mean = use_pref.mean();
      } else {
        at::Tensor sc;
        switch (c.pref_scale) {
          case PreferenceScale::kOne: sc = at::ones_like(gap); break;
          case PreferenceScale::kClip: sc = (gap / c.tau).clamp(0, 1); break;
          case PreferenceScale::kTanh: sc = at::tanh(gap / c.tau); break;
        }
        const double pref_on = t_int <= std::llround(c.pref_t_max * steps) ? 1.0 : 0.0;
        sc = (c.lambda_pref * pref_on) * sc * (gap >= c.pref_gate).to(sc.scalar_type());
        grad = w * (base + PerView(sc) * (base - loser));
        pref_mean = sc.mean();
      }
      // ψ follows the reward of the winner's one-step prediction (Proposition 1).
      at::Tensor psi_reward = r_w.new_zeros({}), psi_grad_norm = r_w.new_zeros({});
      if (psi_in_ranking) {
        psi_grad_norm = s.AdamOnPsi(core[3]);
        psi_reward = core[4];
        st.psi_updated = true;
      } else if (update_psi) {
        std::tie(psi_reward, psi_grad_norm) =
            s.UpdatePsi(pick(z_t, true), t.narrow(0, 0, b), roots, pick(eps_text, true), cameras);
        st.psi_updated = true;
        st.prior_calls = 2;
      }
      // Read back with the step's loss (GuidanceStats::pending).
      const auto type = r_w.scalar_type();
      st.pending = at::stack({r_w.mean(), r_l.mean(), pref_mean.to(type), psi_reward.to(type), psi_grad_norm.to(type),
                              r_w.new_zeros({})});
    }
    grad = grad.nan_to_num(0, 0, 0);
    if (c.grad_clamp > 0) grad = grad.clamp(-c.grad_clamp, c.grad_clamp);
  }
  at::Tensor target = (z - grad).detach();
  at::Tensor loss = 0.5 * (z - target).pow(2).sum() / static_cast<double>(b);
  if (c.method == GuidanceMethod::kRewardGradient) {
    at::Tensor r = s.reward->Score(images, s.reward_text).mean();
    st.pending = at::cat({r.new_zeros({5}), r.detach().reshape({1})});
    loss = loss - c.reward_weight * r;
  }
  return loss;
}

void GuidanceStats::Resolve() {
  if (pending.defined()) Resolve(pending.to(at::kCPU, at::kDouble));
}

void GuidanceStats::Resolve(const at::Tensor& host) {
  TORCH_CHECK(host.numel() == 6, "GuidanceStats::Resolve: 6 values expected, got ", host.numel());
  const at::Tensor v = host.to(at::kDouble).contiguous();
  const double* p = v.data_ptr<double>();
  reward_win = p[0];
  reward_lose = p[1];
  pref_weight = p[2];
  psi_reward = p[3];
  psi_grad_norm = p[4];
  render_reward = p[5];
  pending = at::Tensor();
}

std::map<std::string, at::Tensor> Guidance::State() const {
  std::map<std::string, at::Tensor> state = {{"psi", impl_->psi.detach().cpu()}};
  for (auto& [k, v] : impl_->adam->State()) state["psi_adam." + k] = v;
  return state;
}

absl::Status Guidance::LoadState(const std::map<std::string, at::Tensor>& state) {
  auto it = state.find("psi");
  if (it == state.end() || it->second.sizes() != impl_->psi.sizes())
    return absl::InvalidArgumentError("guidance state: 'psi' missing or of the wrong shape");
  std::map<std::string, at::Tensor> adam;
  for (const auto& [k, v] : state)
    if (k.rfind("psi_adam.", 0) == 0) adam[k.substr(9)] = v;
  if (absl::Status s = impl_->adam->LoadState(adam); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("guidance state: ", s.message()));
  c10::NoGradGuard no_grad;
  impl_->psi.copy_(it->second);  // in place: the optimizer holds this tensor
  return absl::OkStatus();
}

}  // namespace psd3d
