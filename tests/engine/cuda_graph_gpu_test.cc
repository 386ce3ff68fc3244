// CudaGraphCall on the GPU: a captured function replays with each call's inputs and matches the eager
// run, including a backward inside it; one graph per input signature; a function that cannot be
// captured fails with a clear error. Skips without CUDA.
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <string>
#include <vector>

#include "worker/render/cuda_graph.h"

namespace psd3d {
namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available() || !CudaGraphCall::Supported()) GTEST_SKIP() << "no CUDA"

// y = tanh(x·W)·s summed per row, and ∂(Σy)/∂x: a forward and a backward with autograd.
std::vector<at::Tensor> MlpAndGrad(const std::vector<at::Tensor>& in, const at::Tensor& w) {
  c10::AutoGradMode grad(true);
  at::Tensor x = in[0].detach().clone().set_requires_grad(true);
  at::Tensor y = (at::tanh(x.matmul(w)) * in[1]).sum(1);
  at::Tensor gx = torch::autograd::grad({y.sum()}, {x})[0];
  return {y.detach(), gx};
}

TEST(CudaGraphCallGpu, ReplaysMatchEagerRunsWithFreshInputs) {
  SKIP_WITHOUT_CUDA();
  auto o = at::TensorOptions().device(at::kCUDA);
  const at::Tensor w = at::randn({64, 32}, o);
  CudaGraphCall call([&](const std::vector<at::Tensor>& in) { return MlpAndGrad(in, w); });
  for (int i = 0; i < 4; ++i) {
    const at::Tensor x = at::randn({128, 64}, o), s = at::rand({1, 32}, o);
    std::vector<at::Tensor> got = call({x, s});
    std::vector<at::Tensor> want = MlpAndGrad({x, s}, w);
    ASSERT_EQ(got.size(), 2u);
    for (int k = 0; k < 2; ++k) {
      ASSERT_TRUE(at::isfinite(got[k]).all().item<bool>());
      EXPECT_TRUE(at::allclose(got[k], want[k], 1e-5, 1e-6)) << "call " << i << " output " << k;
    }
  }
  EXPECT_EQ(call.graphs(), 1);
  EXPECT_EQ(call.replays(), 4);

  // Another batch size is another signature: a second graph, the first still replays.
  at::Tensor x = at::randn({16, 64}, o), s = at::rand({1, 32}, o);
  EXPECT_TRUE(at::allclose(call({x, s})[0], MlpAndGrad({x, s}, w)[0], 1e-5, 1e-6));
  x = at::randn({128, 64}, o);
  EXPECT_TRUE(at::allclose(call({x, s})[0], MlpAndGrad({x, s}, w)[0], 1e-5, 1e-6));
  EXPECT_EQ(call.graphs(), 2);
  EXPECT_EQ(call.replays(), 6);
}

// A failed capture leaves PyTorch's CUDA generator in capture mode unless CudaGraphCall resets it: the
// test draws on the device afterwards.
TEST(CudaGraphCallGpu, AFunctionThatReadsOnTheHostFailsClearly) {
  SKIP_WITHOUT_CUDA();
  auto o = at::TensorOptions().device(at::kCUDA);
  CudaGraphCall call([](const std::vector<at::Tensor>& in) -> std::vector<at::Tensor> {
    const double m = in[0].max().item<double>();  // a host read: not capturable
    return {in[0] / m};
  });
  const at::Tensor x = at::rand({32}, o) + 0.5;
  try {
    call({x});
    ADD_FAILURE() << "capture of a host read succeeded";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda_graphs=0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(call({x}), c10::Error);  // not retried
  EXPECT_EQ(call.graphs(), 0);
  EXPECT_EQ(call.replays(), 0);
  // The device still runs plain work, random draws included.
  EXPECT_TRUE(at::equal((at::ones({4}, o) * 2).cpu(), at::full({4}, 2.0)));
  EXPECT_NO_THROW(at::rand({8}, o).sum().item<float>());
}

TEST(CudaGraphCallGpu, DisabledRunsEagerly) {
  SKIP_WITHOUT_CUDA();
  CudaGraphCall call([](const std::vector<at::Tensor>& in) -> std::vector<at::Tensor> { return {in[0] + 1}; },
                     /*enabled=*/false);
  const at::Tensor x = at::rand({8}, at::TensorOptions().device(at::kCUDA));
  EXPECT_TRUE(at::equal(call({x})[0], x + 1));
  EXPECT_EQ(call.graphs(), 0);
}

}  // namespace
}  // namespace psd3d
