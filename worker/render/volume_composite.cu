// Fused emission-absorption compositing, one warp per ray. Same math as the LibTorch twin in
// volume_renderer.cc (CompositeTwin):
//   s_i = σ_i δ_i,  T_i = exp(−Σ_{j<i} s_j),  w_i = T_i (1 − e^{−s_i}) = T_i − T_{i+1}
//   C = Σ w_i c_i,  O = Σ w_i,  D = Σ w_i t_i.
// Backward: with g_i = ∂L/∂w_i (= dW_i + dC·c_i + dO + dD t_i), ∂w_i/∂s_i = T_{i+1} and
// ∂w_k/∂s_i = −w_k for k > i, so ∂L/∂s_i = g_i T_{i+1} − Σ_{k>i} g_k w_k (a suffix sum), ∂L/∂σ_i = δ_i ∂L/∂s_i.
#include <cuda_runtime.h>

#include <cstdint>

#include "worker/render/volume_composite_cuda.h"

namespace psd3d {
namespace {

// One warp per ray: a ray's samples are taken 32 at a time (lane j reads sample 32c + j, so loads
// coalesce) and the transmittance prefix is a warp scan carried across chunks. A thread per ray would
// leave most of the GPU idle at 64×64 rays and read memory strided.
constexpr int kThreads = 128;
constexpr int kRaysPerBlock = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

__device__ float WarpInclusiveSum(float v, int lane) {
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(kFull, v, o);
    if (lane >= o) v += n;
  }
  return v;
}

// Σ over lanes ≥ lane (a suffix scan).
__device__ float WarpInclusiveSuffixSum(float v, int lane) {
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_down_sync(kFull, v, o);
    if (lane + o < 32) v += n;
  }
  return v;
}

__device__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

__global__ void CompositeForwardKernel(const float* __restrict__ sigma, const float* __restrict__ delta,
                                       const float* __restrict__ t, const float* __restrict__ rgb, int64_t rays,
                                       int64_t samples, float* __restrict__ weights, float* __restrict__ trans_after,
                                       float* __restrict__ color, float* __restrict__ opacity,
                                       float* __restrict__ depth) {
  const int lane = threadIdx.x & 31;
  const int64_t r = blockIdx.x * static_cast<int64_t>(kRaysPerBlock) + (threadIdx.x >> 5);
  if (r >= rays) return;  // whole warps exit together
  const int64_t base = r * samples;
  float carry = 0.f, cr = 0.f, cg = 0.f, cb = 0.f, op = 0.f, dp = 0.f;
  for (int64_t c = 0; c < samples; c += 32) {
    const int64_t i = c + lane;
    const bool in = i < samples;
    const int64_t k = base + i;
    const float s = in ? sigma[k] * delta[k] : 0.f;
    const float incl = WarpInclusiveSum(s, lane);
    if (in) {
      const float before = __expf(-(carry + incl - s));
      const float after = __expf(-(carry + incl));
      const float w = before - after;
      weights[k] = w;
      trans_after[k] = after;
      cr += w * rgb[3 * k];
      cg += w * rgb[3 * k + 1];
      cb += w * rgb[3 * k + 2];
      op += w;
      dp += w * t[k];
    }
    carry += __shfl_sync(kFull, incl, 31);
  }
  cr = WarpSum(cr);
  cg = WarpSum(cg);
  cb = WarpSum(cb);
  op = WarpSum(op);
  dp = WarpSum(dp);
  if (lane == 0) {
    color[3 * r] = cr;
    color[3 * r + 1] = cg;
    color[3 * r + 2] = cb;
    opacity[r] = op;
    depth[r] = dp;
  }
}

__global__ void CompositeBackwardKernel(const float* __restrict__ delta, const float* __restrict__ t,
                                        const float* __restrict__ rgb, const float* __restrict__ weights,
                                        const float* __restrict__ trans_after, const float* __restrict__ grad_color,
                                        const float* __restrict__ grad_opacity, const float* __restrict__ grad_depth,
                                        const float* __restrict__ grad_weights, int64_t rays, int64_t samples,
                                        float* __restrict__ grad_sigma, float* __restrict__ grad_rgb) {
  const int lane = threadIdx.x & 31;
  const int64_t r = blockIdx.x * static_cast<int64_t>(kRaysPerBlock) + (threadIdx.x >> 5);
  if (r >= rays) return;
  const int64_t base = r * samples;
  const float gr = grad_color[3 * r], gg = grad_color[3 * r + 1], gb = grad_color[3 * r + 2];
  const float go = grad_opacity[r], gd = grad_depth[r];
  // Chunks from the back, so the suffix Σ_{k>i} g_k w_k is carried from later chunks.
  float carry = 0.f;
  const int64_t last = ((samples - 1) / 32) * 32;
  for (int64_t c = last; c >= 0; c -= 32) {
    const int64_t i = c + lane;
    const bool in = i < samples;
    const int64_t k = base + i;
    float g = 0.f, w = 0.f;
    if (in) {
      w = weights[k];
      g = gr * rgb[3 * k] + gg * rgb[3 * k + 1] + gb * rgb[3 * k + 2] + go + gd * t[k];
      if (grad_weights != nullptr) g += grad_weights[k];
    }
    const float gw = g * w;
    const float incl = WarpInclusiveSuffixSum(gw, lane);
    if (in) {
      grad_sigma[k] = delta[k] * (g * trans_after[k] - (carry + incl - gw));
      grad_rgb[3 * k] = w * gr;
      grad_rgb[3 * k + 1] = w * gg;
      grad_rgb[3 * k + 2] = w * gb;
    }
    carry += __shfl_sync(kFull, incl, 0);
  }
}

int Blocks(int64_t rays) { return static_cast<int>((rays + kRaysPerBlock - 1) / kRaysPerBlock); }

const char* LastError() {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace

const char* LaunchCompositeForward(const float* sigma, const float* delta, const float* t, const float* rgb,
                                   int64_t rays, int64_t samples, float* weights, float* trans_after, float* color,
                                   float* opacity, float* depth, cudaStream_t stream) {
  if (rays == 0) return nullptr;
  CompositeForwardKernel<<<Blocks(rays), kThreads, 0, stream>>>(sigma, delta, t, rgb, rays, samples, weights,
                                                                trans_after, color, opacity, depth);
  return LastError();
}

const char* LaunchCompositeBackward(const float* delta, const float* t, const float* rgb, const float* weights,
                                    const float* trans_after, const float* grad_color, const float* grad_opacity,
                                    const float* grad_depth, const float* grad_weights, int64_t rays, int64_t samples,
                                    float* grad_sigma, float* grad_rgb, cudaStream_t stream) {
  if (rays == 0) return nullptr;
  CompositeBackwardKernel<<<Blocks(rays), kThreads, 0, stream>>>(delta, t, rgb, weights, trans_after, grad_color,
                                                                 grad_opacity, grad_depth, grad_weights, rays, samples,
                                                                 grad_sigma, grad_rgb);
  return LastError();
}

}  // namespace psd3d
