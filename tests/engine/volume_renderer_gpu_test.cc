// The fused CUDA compositing kernel against the LibTorch twin on fresh random inputs, forward and
// backward. Skips without CUDA.
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <string>
#include <vector>

#include "worker/render/volume_renderer.h"

namespace psd3d {
namespace {

double RelErr(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kCPU).to(at::kDouble), y = b.to(at::kCPU).to(at::kDouble);
  if (x.sizes() != y.sizes()) return 1e30;
  if (!at::isfinite(x).all().item<bool>() || !at::isfinite(y).all().item<bool>()) return 1e30;  // NaN never passes
  return ((x - y).abs().max() / (y.abs().max() + 1e-12)).item<double>();
}

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available() || !CompositeHasCudaKernel()) GTEST_SKIP() << "no CUDA"

struct Inputs {
  at::Tensor sigma, delta, t, rgb;
};

Inputs RandomInputs(int64_t rays, int64_t samples) {
  auto o = at::TensorOptions().device(at::kCUDA);
  Inputs in;
  in.sigma = at::rand({rays, samples}, o) * 20.0;
  in.delta = at::rand({rays, samples}, o) * 0.05 + 0.001;
  in.t = at::cumsum(in.delta, 1);
  in.rgb = at::rand({rays, samples, 3}, o);
  return in;
}

// Outputs and the gradients w.r.t. sigma and rgb for upstream gradients `up` (color, opacity, depth,
// weights; undefined ones are left out of the backward, as unused outputs are).
std::vector<at::Tensor> RunComposite(bool kernel, const Inputs& in, const std::vector<at::Tensor>& up) {
  at::Tensor s = in.sigma.clone().requires_grad_(true), c = in.rgb.clone().requires_grad_(true);
  Composite out = kernel ? CompositeRays(s, in.delta, in.t, c) : CompositeTwin(s, in.delta, in.t, c);
  std::vector<at::Tensor> outputs = {out.color, out.opacity, out.depth, out.weights}, used, grads;
  for (size_t k = 0; k < up.size(); ++k) {
    if (up[k].defined()) {
      used.push_back(outputs[k]);
      grads.push_back(up[k]);
    }
  }
  // The twin's rgb takes no part in the weights alone: an unused input's gradient is zero.
  auto g = torch::autograd::grad(used, {s, c}, grads, /*retain_graph=*/{}, /*create_graph=*/false,
                                 /*allow_unused=*/true);
  for (int i = 0; i < 2; ++i) {
    if (!g[i].defined()) g[i] = at::zeros_like(i == 0 ? s : c);
  }
  return {out.color.detach(), out.opacity.detach(), out.depth.detach(), out.weights.detach(), g[0], g[1]};
}

void ExpectClose(const std::vector<at::Tensor>& k, const std::vector<at::Tensor>& r, const std::string& what) {
  const char* names[] = {"color", "opacity", "depth", "weights", "grad sigma", "grad rgb"};
  for (size_t i = 0; i < k.size(); ++i) EXPECT_LT(RelErr(k[i], r[i]), 1e-4) << names[i] << " " << what;
}

TEST(CompositeGpu, KernelMatchesTwinForwardAndBackward) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(21);
  for (auto [rays, samples] :
       {std::pair<int64_t, int64_t>{1, 1}, {37, 31}, {1000, 64}, {4096, 256}, {300, 129}, {5, 300}, {64, 1000}}) {
    const Inputs in = RandomInputs(rays, samples);
    auto o = in.sigma.options();
    const std::vector<at::Tensor> up = {at::randn({rays, 3}, o), at::randn({rays}, o), at::randn({rays}, o),
                                        at::randn({rays, samples}, o)};
    ExpectClose(RunComposite(true, in, up), RunComposite(false, in, up),
                "rays=" + std::to_string(rays) + " samples=" + std::to_string(samples));
  }
}

// Upstream gradients as autograd hands them out: expanded scalars of a sum (stride 0), a transposed
// (strided) weight gradient, and outputs that take no part in the loss (undefined gradients).
TEST(CompositeGpu, StridedAndMissingUpstreamGradients) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(22);
  const int64_t rays = 200, samples = 77;
  Inputs in = RandomInputs(rays, samples);
  // Thin rays (optical depth ~1): the opacity-only gradient δ_i·O'·T_S is a difference of O(δ_i) terms,
  // which in float32 loses all accuracy (in the twin as in the kernel) when T_S is ~1e-9.
  in.sigma = in.sigma * 0.05;
  auto o = in.sigma.options();
  const at::Tensor one = at::ones({}, o);
  const std::vector<at::Tensor> expanded = {one.expand({rays, 3}), (one * 0.5).expand({rays}),
                                            (one * -2).expand({rays}),
                                            at::randn({samples, rays}, o).t()};  // strides (1, rays)
  ExpectClose(RunComposite(true, in, expanded), RunComposite(false, in, expanded), "expanded/transposed");
  for (int only = 0; only < 4; ++only) {
    std::vector<at::Tensor> up(4);
    up[only] = only == 0 ? at::randn({rays, 3}, o) : only == 3 ? at::randn({rays, samples}, o) : at::randn({rays}, o);
    ExpectClose(RunComposite(true, in, up), RunComposite(false, in, up), "only output " + std::to_string(only));
  }
}

// Without gradients the kernel runs without the autograd node; results are the same.
TEST(CompositeGpu, NoGradForwardMatchesTwin) {
  SKIP_WITHOUT_CUDA();
  at::manual_seed(23);
  const Inputs in = RandomInputs(513, 200);
  const c10::NoGradGuard no_grad;
  Composite k = CompositeRays(in.sigma, in.delta, in.t, in.rgb), r = CompositeTwin(in.sigma, in.delta, in.t, in.rgb);
  ExpectClose({k.color, k.opacity, k.depth, k.weights}, {r.color, r.opacity, r.depth, r.weights}, "no grad");
  EXPECT_FALSE(k.weights.requires_grad());
}

}  // namespace
}  // namespace psd3d
