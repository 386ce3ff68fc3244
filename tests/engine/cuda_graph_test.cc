// CudaGraphCall off the GPU: the function runs directly, every call, with nothing captured.
#include <gtest/gtest.h>

#include <vector>

#include "worker/render/cuda_graph.h"

namespace psd3d {
namespace {

TEST(CudaGraphCall, CallsTheFunctionDirectlyOnCpu) {
  int calls = 0;
  CudaGraphCall call([&](const std::vector<at::Tensor>& in) -> std::vector<at::Tensor> {
    ++calls;
    return {in[0] * 2 + in[1]};
  });
  for (int i = 0; i < 3; ++i) {
    const at::Tensor a = at::full({4}, i), b = at::ones({4});
    std::vector<at::Tensor> out = call({a, b});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(at::equal(out[0], a * 2 + b));
  }
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(call.graphs(), 0);
  EXPECT_EQ(call.replays(), 0);
}

}  // namespace
}  // namespace psd3d
