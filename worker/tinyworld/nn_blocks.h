// Building blocks shared by the tiny prior's networks (text_encoder.h, unet.h): a deterministic weight
// init and plain multi-head attention (matmul + softmax, no fused kernels, so LibTorch 1.13 and 2.x
// compute the same thing). ATen-only header; the torch::nn module is forward-declared.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace torch::nn {
class Module;
}

namespace psd3d::tinyworld {

// Deterministic init of every parameter of `module` (in named_parameters() order) from a CPU generator
// seeded with `seed`, whatever device it is on: tensors of ≥ 2 dims uniform in ±1/√fan_in (PyTorch's
// Linear/Conv default bound), 1-dim "…bias" zero, other 1-dim tensors (norm scales) one. Callers zero
// the output layers of residual branches afterwards where they want an identity start.
void InitWeights(torch::nn::Module& module, uint64_t seed);

// Multi-head attention softmax(q·kᵀ/√d)·v: q [B,N,C], k and v [B or 1, M, C] (a batch of 1 is shared
// by all B, e.g. one prompt's context) → [B,N,C], C split into `heads` heads.
at::Tensor MultiHeadAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads);

// Self-attention of a fused projection: qkv [B,N,3C] (q, k, v concatenated on the last dim) → [B,N,C].
at::Tensor SelfAttention(const at::Tensor& qkv, int64_t heads);

}  // namespace psd3d::tinyworld
