#include "worker/tinyworld/nn_blocks.h"

#include <cmath>
#include <string>
#include <vector>

#include <c10/core/GradMode.h>
#include <torch/nn/module.h>

namespace psd3d::tinyworld {

void InitWeights(torch::nn::Module& module, uint64_t seed) {
  c10::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor p = item.value();
    at::Tensor value;
    if (p.dim() >= 2) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(p.numel() / p.size(0)));
      value = at::empty(p.sizes(), at::kFloat).uniform_(-bound, bound, generator);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      value = at::zeros(p.sizes(), at::kFloat);
    } else {
      value = at::ones(p.sizes(), at::kFloat);
    }
    p.copy_(value);
  }
}

at::Tensor MultiHeadAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.sizes() == k.sizes(), "MultiHeadAttention: q [B,N,C], k = v [B,M,C]");
  const int64_t batch = q.size(0), n = q.size(1), channels = q.size(2);
  TORCH_CHECK(k.size(2) == channels && channels % heads == 0, "MultiHeadAttention: channels ", channels,
              " must match k and split into ", heads, " heads");
  TORCH_CHECK(k.size(0) == batch || k.size(0) == 1, "MultiHeadAttention: k batch must be ", batch, " or 1");
  const int64_t d = channels / heads;
  auto split = [&](const at::Tensor& x) { return x.reshape({x.size(0), x.size(1), heads, d}).permute({0, 2, 1, 3}); };
  at::Tensor scores = at::matmul(split(q) * (1.0 / std::sqrt(static_cast<double>(d))), split(k).transpose(-2, -1));
  at::Tensor out = at::matmul(at::softmax(scores, -1), split(v));  // [B,h,N,d]
  return out.permute({0, 2, 1, 3}).reshape({batch, n, channels});
}

at::Tensor SelfAttention(const at::Tensor& qkv, int64_t heads) {
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % 3 == 0, "SelfAttention: qkv must be [B,N,3C], got ", qkv.sizes());
  const std::vector<at::Tensor> parts = qkv.chunk(3, -1);
  return MultiHeadAttention(parts[0], parts[1], parts[2], heads);
}

}  // namespace psd3d::tinyworld
