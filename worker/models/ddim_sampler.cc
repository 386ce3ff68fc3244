#include "worker/models/ddim_sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <c10/core/GradMode.h>

namespace psd3d {
namespace {

// `steps` timesteps from T−1 down, evenly spaced ("trailing" spacing: the first step starts at pure
// noise, t = T−1, and the last is the smallest, ≈ T/steps − 1).
std::vector<int64_t> Timesteps(int64_t num_train_steps, int64_t steps) {
  std::vector<int64_t> ts;
  const double stride = static_cast<double>(num_train_steps) / static_cast<double>(steps);
  for (int64_t i = 0; i < steps; ++i) {
    ts.push_back(std::max<int64_t>(0, std::llround(num_train_steps - i * stride) - 1));
  }
  return ts;
}

// The batch `a` followed by the batch `b`, field by field.
CameraBatch Concat(const CameraBatch& a, const CameraBatch& b) {
  CameraBatch c;
  c.c2w = at::cat({a.c2w, b.c2w});
  c.w2c = at::cat({a.w2c, b.w2c});
  c.proj = at::cat({a.proj, b.proj});
  c.mvp = at::cat({a.mvp, b.mvp});
  c.position = at::cat({a.position, b.position});
  c.elevation = at::cat({a.elevation, b.elevation});
  c.azimuth = at::cat({a.azimuth, b.azimuth});
  c.distance = at::cat({a.distance, b.distance});
  c.fovy = at::cat({a.fovy, b.fovy});
  return c;
}

at::Tensor ExpandTo(const at::Tensor& context, int64_t batch) {
  return context.size(0) == batch ? context : context.expand({batch, context.size(1), context.size(2)});
}

// Classifier-free guided ε: both branches in one PredictNoise call, or the conditional one alone when
// the scale is 1.
struct GuidedNoise {
  DiffusionPrior& prior;
  double scale;
  at::Tensor context;   // [B,L,D], or [2B,L,D] (unconditional first) when guided
  CameraBatch cameras;  // size B, or 2B when guided

  at::Tensor operator()(const at::Tensor& x, int64_t t) const {
    const bool guided = scale != 1.0;
    at::Tensor x_in = guided ? at::cat({x, x}) : x;
    at::Tensor tt = at::full({x_in.size(0)}, t, x.options().dtype(at::kLong));
    at::Tensor eps = prior.PredictNoise(x_in, tt, context, cameras);
    if (!guided) return eps;
    std::vector<at::Tensor> parts = eps.chunk(2, 0);
    return parts[0] + scale * (parts[1] - parts[0]);
  }
};

}  // namespace

at::Tensor SampleDdim(DiffusionPrior& prior, const at::Tensor& context, const CameraBatch& cameras,
                      const DdimOptions& options, at::Generator& generator) {
  c10::NoGradGuard no_grad;
  const int64_t batch = cameras.size();
  const int64_t num_train_steps = prior.schedule().num_steps();
  TORCH_CHECK(context.dim() == 3 && (context.size(0) == 1 || context.size(0) == batch), "SampleDdim: context must be [",
              batch, " or 1, L, D], got ", context.sizes());
  TORCH_CHECK(options.steps >= 1 && options.steps <= num_train_steps, "SampleDdim: steps ", options.steps,
              " must be in [1, ", num_train_steps, "]");
  TORCH_CHECK(options.eta >= 0 && std::isfinite(options.guidance_scale), "SampleDdim: need eta ≥ 0, finite scale");

  const at::Device device = prior.device();
  const CameraBatch cams = cameras.to(device);
  const at::Tensor cond = ExpandTo(context.to(device), batch);
  GuidedNoise noise{prior, options.guidance_scale, cond, cams};
  if (options.guidance_scale != 1.0) {
    noise.context = at::cat({ExpandTo(prior.EmptyContext().to(device), batch), cond});
    noise.cameras = Concat(cams, cams);
  }

  // The latent shape the prior's noise lives on, from one blank image.
  std::vector<int64_t> shape =
      prior.Encode(at::zeros({1, 3, prior.image_size(), prior.image_size()}, at::TensorOptions(device))).sizes().vec();
  shape[0] = batch;
  auto randn = [&] { return at::randn(shape, generator, at::kFloat).to(device); };

  const at::Tensor abar_tensor = prior.schedule().alphas_cumprod.to(at::kDouble).contiguous();
  const double* abar = abar_tensor.data_ptr<double>();
  const std::vector<int64_t> ts = Timesteps(num_train_steps, options.steps);

  at::Tensor x = randn();
  for (size_t i = 0; i < ts.size(); ++i) {
    const double a = abar[ts[i]];
    const double a_prev = i + 1 < ts.size() ? abar[ts[i + 1]] : 1.0;
    at::Tensor eps = noise(x, ts[i]);
    at::Tensor x0 = (x - std::sqrt(1.0 - a) * eps) / std::sqrt(a);
    const double sigma = options.eta * std::sqrt((1.0 - a_prev) / (1.0 - a)) * std::sqrt(1.0 - a / a_prev);
    const double dir = std::sqrt(std::max(0.0, 1.0 - a_prev - sigma * sigma));
    x = std::sqrt(a_prev) * x0 + dir * eps;
    if (sigma > 0) x = x + sigma * randn();
  }
  return prior.Decode(x).clamp(0.0, 1.0);
}

}  // namespace psd3d
