// Volume compositing, forward and forward + backward: the fused kernel vs the LibTorch twin on the same
// device. Field evaluation is not included (the hash-grid bench times it).
//
// The backward rows differentiate the four outputs with given upstream gradients (what the rest of a
// training step hands the op) into sigma and rgb: no loss ops and no gradient accumulation into
// leaves, which are not part of the op. "x8" runs 8 independent calls into one backward pass, as a
// training step's graph holds many ops: per call, the autograd engine's fixed start-up per backward
// pass (bench_harness.cc prints it) is then shared.
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <string>
#include <vector>

#include "bench/engine/bench_harness.h"
#include "worker/render/volume_renderer.h"

namespace psd3d::bench {
namespace {

std::vector<Row> BenchComposite(const at::Device& device) {
  const int64_t rays = 64 * 64, samples = 256, calls = 8;
  auto o = at::TensorOptions().device(device);
  at::Tensor delta = at::full({rays, samples}, 2.0 / samples, o), t = at::cumsum(delta, 1);
  const at::Tensor sigma0 = at::rand({rays, samples}, o) * 10.0, rgb0 = at::rand({rays, samples, 3}, o);
  std::vector<at::Tensor> sigma, rgb;  // independent leaves, one pair per call of the x8 row
  for (int64_t k = 0; k < calls; ++k) {
    sigma.push_back(sigma0.clone().requires_grad_(true));
    rgb.push_back(rgb0.clone().requires_grad_(true));
  }
  const std::vector<at::Tensor> up = {at::randn({rays, 3}, o), at::randn({rays}, o), at::randn({rays}, o),
                                      at::randn({rays, samples}, o)};
  // Forward of `n` calls, then one backward pass through all of them.
  auto fwd_bwd = [&](bool kernel, int64_t n) {
    std::vector<at::Tensor> outputs, grads, inputs;
    for (int64_t k = 0; k < n; ++k) {
      Composite c = kernel ? CompositeRays(sigma[k], delta, t, rgb[k]) : CompositeTwin(sigma[k], delta, t, rgb[k]);
      outputs.insert(outputs.end(), {c.color, c.opacity, c.depth, c.weights});
      grads.insert(grads.end(), up.begin(), up.end());
      inputs.insert(inputs.end(), {sigma[k], rgb[k]});
    }
    torch::autograd::grad(outputs, inputs, grads);
  };
  const std::string work = "64x64 rays x 256 samples";
  Row fwd;
  fwd.name = "volume composite fwd";
  fwd.work = work;
  {
    const c10::NoGradGuard no_grad;
    fwd.kernel_ms = TimeMs([&] { CompositeRays(sigma0, delta, t, rgb0); }, device, 3, 10, &fwd.kernel_host_ms);
    fwd.twin_ms = TimeMs([&] { CompositeTwin(sigma0, delta, t, rgb0); }, device);
  }
  // Per sample, floats: reads σ, δ, t, rgb (6), writes w (1); without a backward to follow, T_{i+1} is
  // not stored.
  fwd.min_bytes = static_cast<double>(rays) * samples * (6 + 1) * sizeof(float);
  fwd.items = rays;
  fwd.item_unit = "rays";
  Row row;
  row.name = "volume composite fwd+bwd";
  row.work = work;
  row.kernel_ms = TimeMs([&] { fwd_bwd(true, 1); }, device, 3, 10, &row.kernel_host_ms);
  row.twin_ms = TimeMs([&] { fwd_bwd(false, 1); }, device);
  // Per sample, floats: forward reads σ, δ, t, rgb (6) and writes w, T_{i+1} (2); backward reads δ, t,
  // rgb, w, T_{i+1}, the weight gradient (8) and writes ∂σ, ∂rgb (4).
  row.min_bytes = static_cast<double>(rays) * samples * (6 + 2 + 8 + 4) * sizeof(float);
  row.items = rays;
  row.item_unit = "rays";
  row.launches = 2;  // forward and backward kernels
  row.passes = 1;    // shared by the x8 row's 8 calls
  Row many = row;
  many.name = "volume composite fwd+bwd x8";
  many.work = work + ", per call";
  many.kernel_ms = TimeMs([&] { fwd_bwd(true, calls); }, device, 3, 10, &many.kernel_host_ms) / calls;
  many.kernel_host_ms /= calls;
  many.twin_ms = TimeMs([&] { fwd_bwd(false, calls); }, device) / calls;
  many.passes = 0;
  return {fwd, row, many};
}

PSD3D_ENGINE_BENCH("volume composite", BenchComposite);

}  // namespace
}  // namespace psd3d::bench
