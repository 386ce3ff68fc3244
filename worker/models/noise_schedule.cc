#include "worker/models/noise_schedule.h"

#include <cmath>
#include <utility>
#include <vector>

#include <c10/util/Exception.h>

namespace psd3d {
namespace {

NoiseSchedule FromBetas(const at::Tensor& betas) {
  NoiseSchedule s;
  s.alphas_cumprod = at::cumprod(1.0 - betas, 0).to(at::kFloat).contiguous();
  return s;
}

// [B] → [B,1,...,1] to broadcast over a batch of `like`'s rank.
at::Tensor PerSample(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = v.size(0);
  return v.view(shape);
}

}  // namespace

NoiseSchedule NoiseSchedule::Linear(int64_t steps, double beta_start, double beta_end) {
  TORCH_CHECK(steps >= 2 && 0 < beta_start && beta_start < beta_end && beta_end < 1,
              "NoiseSchedule::Linear: bad parameters");
  return FromBetas(at::linspace(beta_start, beta_end, steps, at::kDouble));
}

NoiseSchedule NoiseSchedule::ScaledLinear(int64_t steps, double beta_start, double beta_end) {
  TORCH_CHECK(steps >= 2 && 0 < beta_start && beta_start < beta_end && beta_end < 1,
              "NoiseSchedule::ScaledLinear: bad parameters");
  return FromBetas(at::linspace(std::sqrt(beta_start), std::sqrt(beta_end), steps, at::kDouble).pow(2));
}

at::Tensor NoiseSchedule::AlphaBar(const at::Tensor& t) const {
  TORCH_CHECK(t.dim() == 1 && t.scalar_type() == at::kLong, "AlphaBar: t must be [B] int64");
  return alphas_cumprod.to(t.device()).index_select(0, t);
}

at::Tensor NoiseSchedule::AddNoise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const {
  at::Tensor a = PerSample(AlphaBar(t), x0).to(x0.scalar_type());
  return a.sqrt() * x0 + (1.0 - a).sqrt() * noise;
}

at::Tensor NoiseSchedule::PredictX0(const at::Tensor& x_t, const at::Tensor& eps, const at::Tensor& t) const {
  at::Tensor a = PerSample(AlphaBar(t), x_t).to(x_t.scalar_type());
  return (x_t - (1.0 - a).sqrt() * eps) / a.sqrt();
}

float NoiseSchedule::AlphaBarAt(int64_t t) const {
  TORCH_CHECK(alphas_cumprod.is_cpu() && alphas_cumprod.scalar_type() == at::kFloat && alphas_cumprod.is_contiguous(),
              "noise schedule: ᾱ must be float32 on the CPU");
  TORCH_CHECK(t >= 0 && t < alphas_cumprod.size(0), "noise schedule: timestep ", t, " out of [0, ", alphas_cumprod.size(0), ")");
  return alphas_cumprod.data_ptr<float>()[t];
}

namespace {

// √ᾱ_t and √(1−ᾱ_t) in float32, as the tensor versions compute them.
std::pair<float, float> Roots(float a) { return {std::sqrt(a), std::sqrt(1.0f - a)}; }

}  // namespace

at::Tensor NoiseSchedule::AddNoise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const {
  const auto [sa, s1] = Roots(AlphaBarAt(t));
  return sa * x0 + s1 * noise;
}

at::Tensor NoiseSchedule::PredictX0(const at::Tensor& x_t, const at::Tensor& eps, int64_t t) const {
  const auto [sa, s1] = Roots(AlphaBarAt(t));
  return (x_t - s1 * eps) / sa;
}

at::Tensor NoiseSchedule::RootsAt(int64_t t) const {
  const auto [sa, s1] = Roots(AlphaBarAt(t));
  return at::tensor({sa, s1}, at::kFloat);
}

at::Tensor NoiseSchedule::PredictX0FromRoots(const at::Tensor& x_t, const at::Tensor& eps, const at::Tensor& roots) {
  TORCH_CHECK(roots.dim() == 1 && roots.size(0) == 2, "PredictX0FromRoots: roots must be [2]");
  const at::Tensor r = roots.to(x_t.scalar_type());
  return (x_t - r[1] * eps) / r[0];
}

}  // namespace psd3d
