// Launchers of the fused volume-compositing kernels (volume_composite.cu): plain C++ with raw pointers
// so the kernels compile with nvcc alone. One warp per ray; samples of a ray are contiguous.
#pragma once

#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d {

// Inputs [R,S] sigma, delta, t and [R,S,3] rgb, contiguous; outputs weights [R,S], color [R,3], opacity
// [R], depth [R], and trans_after [R,S] (T_{i+1}, kept for backward; may be null when no backward
// follows). Returns nullptr or the CUDA error.
const char* LaunchCompositeForward(const float* sigma, const float* delta, const float* t, const float* rgb,
                                   int64_t rays, int64_t samples, float* weights, float* trans_after,
                                   float* color, float* opacity, float* depth, cudaStream_t stream);

// An upstream gradient read in place with element strides (autograd hands out expanded, stride-0
// gradients for sums and means: reading them strided saves a copy each). data == nullptr: zero.
struct StridedGrad {
  const float* data = nullptr;
  int64_t ray_stride = 0;  // between rays
  int64_t item_stride = 0;  // between channels (color) or samples (weights); unused for opacity, depth
};

// Gradients of sigma [R,S] and rgb [R,S,3] (contiguous outputs) from the output gradients: color [R,3],
// opacity [R], depth [R] and weights [R,S], any of them absent.
const char* LaunchCompositeBackward(const float* delta, const float* t, const float* rgb, const float* weights,
                                    const float* trans_after, StridedGrad grad_color, StridedGrad grad_opacity,
                                    StridedGrad grad_depth, StridedGrad grad_weights, int64_t rays, int64_t samples,
                                    float* grad_sigma, float* grad_rgb, cudaStream_t stream);

}  // namespace psd3d
