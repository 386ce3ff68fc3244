#include "worker/render/volume_renderer.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "worker/cuda_build.h"
#include "worker/render/device_copy.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "worker/render/volume_composite_cuda.h"
#endif

namespace psd3d {
namespace {

void CheckCompositeInputs(const at::Tensor& sigma, const at::Tensor& delta, const at::Tensor& t, const at::Tensor& rgb) {
  TORCH_CHECK(sigma.dim() == 2, "composite: sigma must be [R,S], got ", sigma.sizes());
  TORCH_CHECK(delta.sizes() == sigma.sizes() && t.sizes() == sigma.sizes(), "composite: delta and t must match sigma ",
              sigma.sizes());
  TORCH_CHECK(rgb.dim() == 3 && rgb.size(0) == sigma.size(0) && rgb.size(1) == sigma.size(1) && rgb.size(2) == 3,
              "composite: rgb must be [R,S,3], got ", rgb.sizes());
}

#ifdef PSD3D_WITH_CUDA
void CheckCuda(const char* error, const char* what) { TORCH_CHECK(error == nullptr, what, ": ", error); }

at::Tensor Float32(const at::Tensor& x) { return x.scalar_type() == at::kFloat ? x : x.to(at::kFloat); }

// The forward kernel's results: the Composite, and T_{i+1} per sample when a backward follows.
struct CompositeKernelOut {
  Composite c;
  at::Tensor trans_after;
};

// sigma, delta, t [R,S] and rgb [R,S,3], float32 contiguous on one CUDA device.
CompositeKernelOut CompositeForwardCuda(const at::Tensor& sigma, const at::Tensor& delta, const at::Tensor& t,
                                        const at::Tensor& rgb, bool for_backward) {
  const int64_t rays = sigma.size(0), samples = sigma.size(1);
  CompositeKernelOut out;
  out.c.weights = at::empty({rays, samples}, sigma.options());
  if (for_backward) out.trans_after = at::empty({rays, samples}, sigma.options());
  out.c.color = at::empty({rays, 3}, sigma.options());
  out.c.opacity = at::empty({rays}, sigma.options());
  out.c.depth = at::empty({rays}, sigma.options());
  CheckCuda(LaunchCompositeForward(sigma.data_ptr<float>(), delta.data_ptr<float>(), t.data_ptr<float>(),
                                   rgb.data_ptr<float>(), rays, samples, out.c.weights.data_ptr<float>(),
                                   for_backward ? out.trans_after.data_ptr<float>() : nullptr,
                                   out.c.color.data_ptr<float>(), out.c.opacity.data_ptr<float>(),
                                   out.c.depth.data_ptr<float>(), at::cuda::getCurrentCUDAStream()),
            "composite forward");
  return out;
}

// An output gradient as the backward kernel reads it: in place, with its strides (a sum's gradient is
// an expanded scalar: no copy), or absent.
StridedGrad KernelGrad(const at::Tensor& g) {
  StridedGrad k;
  if (!g.defined()) return k;
  k.data = g.data_ptr<float>();
  k.ray_stride = g.stride(0);
  k.item_stride = g.dim() > 1 ? g.stride(1) : 0;
  return k;
}

class CompositeFunction : public torch::autograd::Function<CompositeFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& sigma_in,
                                                const at::Tensor& delta_in, const at::Tensor& t_in,
                                                const at::Tensor& rgb_in) {
    const c10::cuda::CUDAGuard guard(sigma_in.device());
    const at::Tensor delta = Float32(delta_in.contiguous()), t = Float32(t_in.contiguous());
    const at::Tensor rgb = Float32(rgb_in.contiguous());
    CompositeKernelOut out = CompositeForwardCuda(Float32(sigma_in.contiguous()), delta, t, rgb, /*for_backward=*/true);
    ctx->save_for_backward({delta, t, rgb, out.c.weights, out.trans_after});
    // Unused outputs keep undefined gradients (read as zero by the kernel) instead of zero tensors.
    ctx->set_materialize_grads(false);
    return {out.c.color, out.c.opacity, out.c.depth, out.c.weights};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& delta = saved[0];
    const at::Tensor& t = saved[1];
    const at::Tensor& rgb = saved[2];
    const c10::cuda::CUDAGuard guard(delta.device());
    for (at::Tensor& g : grads) {
      if (g.defined()) g = Float32(g);
    }
    at::Tensor grad_sigma = at::empty(delta.sizes(), delta.options()), grad_rgb = at::empty(rgb.sizes(), rgb.options());
    CheckCuda(LaunchCompositeBackward(delta.data_ptr<float>(), t.data_ptr<float>(), rgb.data_ptr<float>(),
                                      saved[3].data_ptr<float>(), saved[4].data_ptr<float>(), KernelGrad(grads[0]),
                                      KernelGrad(grads[1]), KernelGrad(grads[2]), KernelGrad(grads[3]), delta.size(0),
                                      delta.size(1), grad_sigma.data_ptr<float>(), grad_rgb.data_ptr<float>(),
                                      at::cuda::getCurrentCUDAStream()),
              "composite backward");
    return {grad_sigma, at::Tensor(), at::Tensor(), grad_rgb};
  }
};
#endif

}  // namespace

Composite CompositeTwin(const at::Tensor& sigma, const at::Tensor& delta, const at::Tensor& t, const at::Tensor& rgb) {
  CheckCompositeInputs(sigma, delta, t, rgb);
  at::Tensor s = sigma * delta;
  at::Tensor transmittance = at::exp(-(at::cumsum(s, 1) - s));  // T_i: exclusive prefix sum
  Composite c;
  c.weights = transmittance * (1.0 - at::exp(-s));
  c.color = (c.weights.unsqueeze(-1) * rgb).sum(1);
  c.opacity = c.weights.sum(1);
  c.depth = (c.weights * t).sum(1);
  return c;
}

bool CompositeHasCudaKernel() { return kBuiltWithCuda; }

Composite CompositeRays(const at::Tensor& sigma, const at::Tensor& delta, const at::Tensor& t, const at::Tensor& rgb) {
#ifdef PSD3D_WITH_CUDA
  if (sigma.is_cuda()) {
    CheckCompositeInputs(sigma, delta, t, rgb);
    if (c10::GradMode::is_enabled() && (sigma.requires_grad() || rgb.requires_grad())) {
      auto out = CompositeFunction::apply(sigma, delta, t, rgb);
      return {out[0], out[1], out[2], out[3]};
    }
    // No backward follows: a plain kernel call, without the autograd node or the saved T_{i+1}.
    const c10::cuda::CUDAGuard guard(sigma.device());
    return CompositeForwardCuda(Float32(sigma.contiguous()), Float32(delta.contiguous()), Float32(t.contiguous()),
                                Float32(rgb.contiguous()), /*for_backward=*/false)
        .c;
  }
#endif
  return CompositeTwin(sigma, delta, t, rgb);
}

OccupancyGrid::OccupancyGrid(double radius, int64_t resolution, double threshold, const at::Device& device)
    : radius_(radius), threshold_(threshold), res_(resolution),
      // Every cell counts as occupied until the first Update.
      values_(at::full({resolution, resolution, resolution}, 1e9, at::TensorOptions().device(device))),
      occupied_(at::ones({resolution * resolution * resolution}, at::TensorOptions().dtype(at::kBool).device(device))) {}

void OccupancyGrid::Update(const std::function<at::Tensor(const at::Tensor&)>& density, double density_scale,
                           at::Generator& generator, double decay) {
  const c10::NoGradGuard no_grad;
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor idx = at::stack(at::meshgrid({at::arange(res_, opts), at::arange(res_, opts), at::arange(res_, opts)}, "ij"), -1)
                       .reshape({-1, 3});
  at::Tensor jitter = at::rand({idx.size(0), 3}, generator, opts);
  at::Tensor points = (idx + jitter) / static_cast<double>(res_) * (2.0 * radius_) - radius_;
  at::Tensor fresh = at::empty({idx.size(0)}, opts);
  const int64_t chunk = 1 << 18;
  for (int64_t s = 0; s < points.size(0); s += chunk) {
    const int64_t n = std::min(chunk, points.size(0) - s);
    at::Tensor p = points.narrow(0, s, n).to(values_.device());
    fresh.narrow(0, s, n).copy_(density(p).reshape({-1}).to(at::kCPU).to(at::kFloat) * density_scale);
  }
  fresh = fresh.reshape({res_, res_, res_}).to(values_.device());
  at::Tensor decayed = at::where(values_ > 1e8, at::zeros_like(values_), values_ * decay);  // first update replaces
  values_ = at::maximum(decayed, fresh);
  occupied_ = (values_ > threshold_).reshape({-1});
}

at::Tensor OccupancyGrid::Occupied(const at::Tensor& points) const {
  at::Tensor inside = (points.abs() <= radius_).all(-1);
  at::Tensor cell = ((points + radius_) / (2.0 * radius_) * static_cast<double>(res_)).floor().to(at::kLong).clamp(0, res_ - 1);
  at::Tensor flat = (cell.select(-1, 0) * res_ + cell.select(-1, 1)) * res_ + cell.select(-1, 2);
  return inside & occupied_.to(points.device()).index_select(0, flat.reshape({-1})).reshape(flat.sizes());
}

double OccupancyGrid::occupied_fraction() const { return occupied_.to(at::kFloat).mean().item<double>(); }

VolumeRender RenderVolume(const FieldFn& field, const CameraBatch& cameras, const VolumeRenderOptions& o,
                          at::Generator* generator) {
  TORCH_CHECK(o.samples_per_ray > 0 && o.height > 0 && o.width > 0, "volume render: bad sizes");
  Rays rays = CameraRays(cameras, o.height, o.width);
  const int64_t b = cameras.size(), r = b * o.height * o.width, s = o.samples_per_ray;
  const auto opts = cameras.c2w.options();
  at::Tensor origins = rays.origins.reshape({r, 3}), dirs = rays.directions.reshape({r, 3});

  // Where each ray crosses the bounding sphere |o + t d| = radius (d is unit length).
  at::Tensor bb = (origins * dirs).sum(-1), cc = (origins * origins).sum(-1) - o.radius * o.radius;
  at::Tensor disc = bb * bb - cc;
  at::Tensor valid = disc > 0;
  at::Tensor root = at::sqrt(disc.clamp_min(0));
  at::Tensor near = (-bb - root).clamp_min(0), far = (-bb + root).clamp_min(0);
  far = at::where(valid, far, near);  // empty interval: zero spacing, zero weight

  // Jitter comes from the generator's device (a CPU generator drives CUDA renders deterministically).
  at::Tensor u = o.stratified ? (generator ? ToDeviceAsync(at::rand({r, s}, *generator, opts.device(generator->device())), opts.device())
                                           : at::rand({r, s}, opts))
                              : at::full({r, s}, 0.5, opts);
  at::Tensor span = (far - near).unsqueeze(1);
  at::Tensor t = near.unsqueeze(1) + (at::arange(s, opts).unsqueeze(0) + u) / static_cast<double>(s) * span;
  at::Tensor delta = (span / static_cast<double>(s)).expand({r, s}).contiguous();
  at::Tensor points = origins.unsqueeze(1) + t.unsqueeze(-1) * dirs.unsqueeze(1);  // [R,S,3]

  // Evaluate the field only where it can contribute: rays that cross the bound, occupied cells.
  at::Tensor keep = valid.unsqueeze(1).expand({r, s});
  if (o.occupancy != nullptr) keep = keep & o.occupancy->Occupied(points);
  at::Tensor idx = keep.reshape({-1}).nonzero().reshape({-1});
  at::Tensor flat_points = points.reshape({-1, 3}).index_select(0, idx);
  std::vector<at::Tensor> dens, alb;
  for (int64_t st = 0; st < flat_points.size(0); st += o.chunk) {
    FieldSample f = field(flat_points.narrow(0, st, std::min(o.chunk, flat_points.size(0) - st)));
    dens.push_back(f.density.reshape({-1}));
    alb.push_back(f.albedo.reshape({-1, 3}));
  }
  at::Tensor sigma = at::zeros({r * s}, opts), albedo = at::zeros({r * s, 3}, opts);
  if (!dens.empty()) {
    sigma = sigma.index_put({idx}, at::cat(dens).to(sigma.scalar_type()));
    albedo = albedo.index_put({idx}, at::cat(alb).to(albedo.scalar_type()));
  }
  Composite c = CompositeRays(sigma.reshape({r, s}), delta, t, albedo.reshape({r, s, 3}));

  at::Tensor bg = o.background.defined() ? o.background.to(opts) : at::ones({3}, opts);
  bg = bg.dim() == 1 ? bg.view({1, 3}).expand({r, 3}) : bg.reshape({r, 3});
  VolumeRender out;
  out.rgb = (c.color + bg * (1.0 - c.opacity.unsqueeze(1))).reshape({b, o.height, o.width, 3});
  out.opacity = c.opacity.reshape({b, o.height, o.width, 1});
  out.depth = (c.depth / c.opacity.clamp_min(1e-6)).reshape({b, o.height, o.width, 1});
  out.weights = c.weights;
  out.points = points;
  out.directions = dirs;
  out.valid = valid;
  return out;
}

}  // namespace psd3d
