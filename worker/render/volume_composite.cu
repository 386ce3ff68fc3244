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

// One warp per ray: lane j of chunk c reads sample 32c + j, so loads coalesce, and the transmittance
// prefix is a warp scan carried across chunks. A warp first loads kChunks chunks (a span of 128
// samples) into registers and only then scans them: the loads of a span are in flight together
// instead of one chunk's latency at a time (the kernel is memory-latency bound at 64×64 rays, where a
// warp per ray fills only part of the GPU). Four chunks keep the registers low enough for every warp
// of a 4096-ray batch to be resident at once on an H100.
constexpr int kThreads = 128;
constexpr int kRaysPerBlock = kThreads / 32;
constexpr int kChunks = 4;
constexpr int kSpan = 32 * kChunks;
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ float WarpInclusiveSum(float v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_up_sync(kFull, v, o);
    if (lane >= o) v += n;
  }
  return v;
}

// Σ over lanes ≥ lane (a suffix scan).
__device__ __forceinline__ float WarpInclusiveSuffixSum(float v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float n = __shfl_down_sync(kFull, v, o);
    if (lane + o < 32) v += n;
  }
  return v;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

__device__ __forceinline__ float Read(const StridedGrad& g, int64_t ray, int64_t item) {
  return g.data == nullptr ? 0.f : g.data[ray * g.ray_stride + item * g.item_stride];
}

__global__ void __launch_bounds__(kThreads)
    CompositeForwardKernel(const float* __restrict__ sigma, const float* __restrict__ delta,
                           const float* __restrict__ t, const float* __restrict__ rgb, int64_t rays, int64_t samples,
                           float* __restrict__ weights, float* __restrict__ trans_after, float* __restrict__ color,
                           float* __restrict__ opacity, float* __restrict__ depth) {
  const int lane = threadIdx.x & 31;
  const int64_t r = blockIdx.x * static_cast<int64_t>(kRaysPerBlock) + (threadIdx.x >> 5);
  if (r >= rays) return;  // whole warps exit together
  const int64_t base = r * samples;
  float carry = 0.f, cr = 0.f, cg = 0.f, cb = 0.f, op = 0.f, dp = 0.f;
  for (int64_t c0 = 0; c0 < samples; c0 += kSpan) {
    float s[kChunks], tv[kChunks], red[kChunks], green[kChunks], blue[kChunks];
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int64_t i = c0 + 32 * j + lane, k = base + i;
      const bool in = i < samples;
      s[j] = in ? sigma[k] * delta[k] : 0.f;
      tv[j] = in ? t[k] : 0.f;
      red[j] = in ? rgb[3 * k] : 0.f;
      green[j] = in ? rgb[3 * k + 1] : 0.f;
      blue[j] = in ? rgb[3 * k + 2] : 0.f;
    }
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      if (c0 + 32 * j >= samples) break;  // the same for the whole warp
      const int64_t i = c0 + 32 * j + lane, k = base + i;
      const float incl = WarpInclusiveSum(s[j], lane);
      if (i < samples) {
        const float before = __expf(-(carry + incl - s[j]));
        const float after = __expf(-(carry + incl));
        const float w = before - after;
        weights[k] = w;
        if (trans_after != nullptr) trans_after[k] = after;
        cr += w * red[j];
        cg += w * green[j];
        cb += w * blue[j];
        op += w;
        dp += w * tv[j];
      }
      carry += __shfl_sync(kFull, incl, 31);
    }
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

__global__ void __launch_bounds__(kThreads)
    CompositeBackwardKernel(const float* __restrict__ delta, const float* __restrict__ t,
                            const float* __restrict__ rgb, const float* __restrict__ weights,
                            const float* __restrict__ trans_after, StridedGrad grad_color, StridedGrad grad_opacity,
                            StridedGrad grad_depth, StridedGrad grad_weights, int64_t rays, int64_t samples,
                            float* __restrict__ grad_sigma, float* __restrict__ grad_rgb) {
  const int lane = threadIdx.x & 31;
  const int64_t r = blockIdx.x * static_cast<int64_t>(kRaysPerBlock) + (threadIdx.x >> 5);
  if (r >= rays) return;
  const int64_t base = r * samples;
  const float gr = Read(grad_color, r, 0), gg = Read(grad_color, r, 1), gb = Read(grad_color, r, 2);
  const float go = Read(grad_opacity, r, 0), gd = Read(grad_depth, r, 0);
  // Spans from the back, so the suffix Σ_{k>i} g_k w_k is carried from later samples.
  float carry = 0.f;
  for (int64_t c0 = (samples - 1) / kSpan * kSpan; c0 >= 0; c0 -= kSpan) {
    float w[kChunks], g[kChunks], after[kChunks], dl[kChunks];
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int64_t i = c0 + 32 * j + lane, k = base + i;
      const bool in = i < samples;
      w[j] = in ? weights[k] : 0.f;
      after[j] = in ? trans_after[k] : 0.f;
      dl[j] = in ? delta[k] : 0.f;
      g[j] = in ? gr * rgb[3 * k] + gg * rgb[3 * k + 1] + gb * rgb[3 * k + 2] + go + gd * t[k] +
                      Read(grad_weights, r, i)
                : 0.f;
    }
#pragma unroll
    for (int j = kChunks - 1; j >= 0; --j) {
      if (c0 + 32 * j >= samples) continue;  // the same for the whole warp
      const int64_t i = c0 + 32 * j + lane, k = base + i;
      const float gw = g[j] * w[j];
      const float incl = WarpInclusiveSuffixSum(gw, lane);
      if (i < samples) {
        grad_sigma[k] = dl[j] * (g[j] * after[j] - (carry + incl - gw));
        grad_rgb[3 * k] = w[j] * gr;
        grad_rgb[3 * k + 1] = w[j] * gg;
        grad_rgb[3 * k + 2] = w[j] * gb;
      }
      carry += __shfl_sync(kFull, incl, 0);
    }
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
                                    const float* trans_after, StridedGrad grad_color, StridedGrad grad_opacity,
                                    StridedGrad grad_depth, StridedGrad grad_weights, int64_t rays, int64_t samples,
                                    float* grad_sigma, float* grad_rgb, cudaStream_t stream) {
  if (rays == 0 || samples == 0) return nullptr;
  CompositeBackwardKernel<<<Blocks(rays), kThreads, 0, stream>>>(delta, t, rgb, weights, trans_after, grad_color,
                                                                 grad_opacity, grad_depth, grad_weights, rays, samples,
                                                                 grad_sigma, grad_rgb);
  return LastError();
}

}  // namespace psd3d
