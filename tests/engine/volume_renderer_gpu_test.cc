// The fused CUDA compositing kernel against the LibTorch twin on fresh random inputs, forward and
// backward. Skips without CUDA.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "worker/render/volume_renderer.h"

namespace psd3d {
namespace {

double RelErr(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kCPU).to(at::kDouble), y = b.to(at::kCPU).to(at::kDouble);
  if (!at::isfinite(x).all().item<bool>() || !at::isfinite(y).all().item<bool>()) return 1e30;  // NaN never passes
  return ((x - y).abs().max() / (y.abs().max() + 1e-12)).item<double>();
}

TEST(CompositeGpu, KernelMatchesTwinForwardAndBackward) {
  if (!torch::cuda::is_available() || !CompositeHasCudaKernel()) GTEST_SKIP() << "no CUDA";
  const at::Device cuda(at::kCUDA);
  for (auto [rays, samples] : {std::pair<int64_t, int64_t>{1, 1}, {37, 31}, {1000, 64}, {4096, 256}, {300, 129}}) {
    auto o = at::TensorOptions().device(cuda);
    at::Tensor sigma = at::rand({rays, samples}, o) * 20.0;
    at::Tensor delta = at::rand({rays, samples}, o) * 0.05 + 0.001;
    at::Tensor t = at::cumsum(delta, 1);
    at::Tensor rgb = at::rand({rays, samples, 3}, o);
    at::Tensor gc = at::randn({rays, 3}, o), go = at::randn({rays}, o), gd = at::randn({rays}, o);
    at::Tensor gw = at::randn({rays, samples}, o);
    auto run = [&](bool kernel) {
      at::Tensor s = sigma.clone().requires_grad_(true), c = rgb.clone().requires_grad_(true);
      Composite out = kernel ? CompositeRays(s, delta, t, c) : CompositeTwin(s, delta, t, c);
      ((out.color * gc).sum() + (out.opacity * go).sum() + (out.depth * gd).sum() + (out.weights * gw).sum()).backward();
      return std::vector<at::Tensor>{out.color.detach(), out.opacity.detach(), out.depth.detach(),
                                     out.weights.detach(), s.grad(), c.grad()};
    };
    auto k = run(true), r = run(false);
    const char* names[] = {"color", "opacity", "depth", "weights", "grad sigma", "grad rgb"};
    for (int i = 0; i < 6; ++i) {
      EXPECT_LT(RelErr(k[i], r[i]), 1e-4) << names[i] << " rays=" << rays << " samples=" << samples;
    }
  }
}

}  // namespace
}  // namespace psd3d
