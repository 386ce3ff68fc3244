// Volume compositing, forward + backward: the fused kernel vs the LibTorch twin on the same device.
// Field evaluation is not included (the hash-grid bench times it).
#include <c10/core/GradMode.h>

#include "bench/engine/bench_harness.h"
#include "worker/render/volume_renderer.h"

namespace psd3d::bench {
namespace {

std::vector<Row> BenchComposite(const at::Device& device) {
  const int64_t rays = 64 * 64, samples = 256;
  auto o = at::TensorOptions().device(device);
  at::Tensor sigma = (at::rand({rays, samples}, o) * 10.0).requires_grad_(true);
  at::Tensor delta = at::full({rays, samples}, 2.0 / samples, o), t = at::cumsum(delta, 1);
  at::Tensor rgb = at::rand({rays, samples, 3}, o).requires_grad_(true);
  auto step = [&](bool kernel) {
    Composite c = kernel ? CompositeRays(sigma, delta, t, rgb) : CompositeTwin(sigma, delta, t, rgb);
    (c.color.sum() + c.opacity.sum() + c.depth.sum() + c.weights.sum()).backward();
  };
  Row fwd;
  fwd.name = "volume composite fwd";
  fwd.work = "64x64 rays x 256 samples";
  {
    const c10::NoGradGuard no_grad;
    fwd.kernel_ms = TimeMs([&] { CompositeRays(sigma, delta, t, rgb); }, device);
    fwd.twin_ms = TimeMs([&] { CompositeTwin(sigma, delta, t, rgb); }, device);
  }
  fwd.min_bytes = static_cast<double>(rays) * samples * (6 + 2) * sizeof(float);
  fwd.items = rays;
  fwd.item_unit = "rays";
  Row row;
  row.name = "volume composite fwd+bwd";
  row.work = "64x64 rays x 256 samples";
  row.kernel_ms = TimeMs([&] { step(true); }, device);
  row.twin_ms = TimeMs([&] { step(false); }, device);
  // Per sample, floats: forward reads σ, δ, t, rgb (6) and writes w, T_{i+1} (2); backward reads δ, t,
  // rgb, w, T_{i+1}, the weight gradient (8) and writes ∂σ, ∂rgb (4).
  row.min_bytes = static_cast<double>(rays) * samples * (6 + 2 + 8 + 4) * sizeof(float);
  row.items = rays;
  row.item_unit = "rays";
  return {fwd, row};
}

PSD3D_ENGINE_BENCH("volume composite", BenchComposite);

}  // namespace
}  // namespace psd3d::bench
