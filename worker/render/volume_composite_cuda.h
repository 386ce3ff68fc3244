// Launchers of the fused volume-compositing kernels (volume_composite.cu): plain C++ with raw pointers
// so the kernels compile with nvcc alone. One warp per ray; samples of a ray are contiguous.
#pragma once

#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d {

// Inputs [R,S] sigma, delta, t and [R,S,3] rgb; outputs weights [R,S], trans_after [R,S] (T_{i+1},
// kept for backward), color [R,3], opacity [R], depth [R]. Returns nullptr or the CUDA error.
const char* LaunchCompositeForward(const float* sigma, const float* delta, const float* t, const float* rgb,
                                   int64_t rays, int64_t samples, float* weights, float* trans_after,
                                   float* color, float* opacity, float* depth, cudaStream_t stream);

// Gradients of sigma [R,S] and rgb [R,S,3] from the output gradients (grad_weights may be null).
const char* LaunchCompositeBackward(const float* delta, const float* t, const float* rgb, const float* weights,
                                    const float* trans_after, const float* grad_color, const float* grad_opacity,
                                    const float* grad_depth, const float* grad_weights, int64_t rays, int64_t samples,
                                    float* grad_sigma, float* grad_rgb, cudaStream_t stream);

}  // namespace psd3d
