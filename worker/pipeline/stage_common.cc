#include "worker/pipeline/stage_common.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace psd3d {

at::Tensor ResizeRenders(const at::Tensor& images, int64_t size) {
  if (images.size(-1) == size && images.size(-2) == size) return images;
  return at::upsample_bilinear2d(images, std::vector<int64_t>{size, size}, /*align_corners=*/false);
}

absl::Status FinishStep(const at::Tensor& loss, const std::vector<at::Tensor>& checked, GuidanceStats& guidance,
                        Adam& adam, absl::string_view stage, int64_t step, double* loss_value) {
  const int64_t stats = guidance.pending.defined() ? guidance.pending.numel() : 0;
  std::vector<at::Tensor> checks = {loss.detach().reshape({1}).to(at::kDouble)};
  if (stats > 0) checks.push_back(guidance.pending.reshape({-1}).to(loss.device(), at::kDouble));
  for (const at::Tensor& p : checked)
    if (p.grad().defined()) checks.push_back(p.grad().isfinite().all().reshape({1}).to(at::kDouble));
  const at::Tensor host = at::cat(checks).cpu();
  *loss_value = host[0].item<double>();
  if (stats > 0) guidance.Resolve(host.narrow(0, 1, stats));
  const at::Tensor finite = host.narrow(0, 1 + stats, host.size(0) - 1 - stats);
  if (!std::isfinite(*loss_value) || finite.lt(1).any().item<bool>()) {
    adam.ZeroGrad();
    const char* what = std::isfinite(*loss_value) ? "non-finite gradient" : "loss is not finite";
    return absl::FailedPreconditionError(absl::StrCat(stage, ": ", what, " at step ", step));
  }
  adam.Step();
  adam.ZeroGrad();
  return absl::OkStatus();
}

std::map<std::string, at::Tensor> WithPrefix(const std::map<std::string, at::Tensor>& state, const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : state) out[prefix + k] = v;
  return out;
}

std::map<std::string, at::Tensor> Unprefixed(const std::map<std::string, at::Tensor>& state, const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : state)
    if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
  return out;
}

void PutTrainingState(const Adam& adam, const Guidance& guidance, const at::Generator& generator, int64_t step,
                      std::map<std::string, at::Tensor>* state) {
  state->merge(WithPrefix(adam.State(), "adam."));
  state->merge(WithPrefix(guidance.State(), "guidance."));
  (*state)["rng"] = generator.get_state();
  (*state)["step"] = at::tensor({step}, at::kLong);
}

absl::Status LoadTrainingState(const std::map<std::string, at::Tensor>& state, absl::string_view stage, Adam& adam,
                               Guidance& guidance, at::Generator& generator, int64_t* step) {
  auto r = state.find("rng"), s = state.find("step");
  if (r == state.end() || s == state.end() || s->second.numel() != 1)
    return absl::InvalidArgumentError(absl::StrCat(stage, " state: 'rng' or 'step' missing"));
  if (absl::Status st = adam.LoadState(Unprefixed(state, "adam.")); !st.ok()) return st;
  if (absl::Status st = guidance.LoadState(Unprefixed(state, "guidance.")); !st.ok()) return st;
  generator.set_state(r->second);
  *step = s->second.item<int64_t>();
  return absl::OkStatus();
}

}  // namespace psd3d
