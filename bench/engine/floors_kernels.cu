// Floor kernels (floors.h): the hash grid's random L2 requests with no index or weight math, and an
// empty kernel for the launch cost.
#include <cuda_runtime.h>

#include "bench/engine/floors_cuda.h"

namespace psd3d::bench {
namespace {

constexpr int kBlock = 256;

__global__ void EmptyKernel() {}

// A 32-bit mix (lowbias32): four independent uniform rows per (point, level).
__device__ __forceinline__ uint32_t Mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// The rows one (point, level) touches at a level of `rows` rows: two x-pairs that share a 16-byte line
// (pair[k] is the even row; the pair is rows pair[k] and pair[k] + 1) and two split over two lines
// (single[0..3]), four uniformly random pairs in all.
struct FloorRows {
  uint32_t pair[2];
  uint32_t single[4];
};

__device__ __forceinline__ FloorRows RowsOf(int64_t i, int level, uint32_t rows) {
  FloorRows f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const uint32_t h = Mix(static_cast<uint32_t>(i) * 4u + static_cast<uint32_t>(k) + 0x9e3779b9u * (level + 1));
    const uint32_t r = (h % rows) & ~1u;
    if (k < 2) {
      f.pair[k] = r;
    } else {
      f.single[2 * (k - 2)] = r;
      f.single[2 * (k - 2) + 1] = (r + 3) % rows;
    }
  }
  return f;
}

__global__ void GatherFloorKernel(int64_t n, const float* __restrict__ table, GatherFloorLevels levels,
                                  float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  const int level = blockIdx.y;
  if (i >= n) return;
  const FloorRows f = RowsOf(i, level, levels.rows[level]);
  const float* grid = table + 2 * levels.offset[level];
  float sx = 0, sy = 0;
#pragma unroll
  for (int k = 0; k < 2; ++k) {  // one 16-byte request per pair
    const float4 v = __ldg(reinterpret_cast<const float4*>(grid) + f.pair[k] / 2);
    sx += v.x + v.z;
    sy += v.y + v.w;
  }
#pragma unroll
  for (int k = 0; k < 4; ++k) {  // one 8-byte request per row
    const float2 a = __ldg(reinterpret_cast<const float2*>(grid) + f.single[k]);
    sx += a.x;
    sy += a.y;
  }
  reinterpret_cast<float2*>(out)[level * n + i] = make_float2(sx, sy);
}

__global__ void ScatterFloorKernel(int64_t n, const float* __restrict__ dy, GatherFloorLevels levels,
                                   float* __restrict__ table) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  const int level = blockIdx.y;
  if (i >= n) return;
  const FloorRows f = RowsOf(i, level, levels.rows[level]);
  float* grid = table + 2 * levels.offset[level];
  const float2 g = reinterpret_cast<const float2*>(dy)[level * n + i];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#pragma unroll
  for (int k = 0; k < 2; ++k) atomicAdd(reinterpret_cast<float4*>(grid) + f.pair[k] / 2, make_float4(g.x, g.y, g.x, g.y));
#pragma unroll
  for (int k = 0; k < 4; ++k) atomicAdd(reinterpret_cast<float2*>(grid) + f.single[k], g);
#else  // no vector atomics: every corner row's two floats
  const uint32_t all[8] = {f.pair[0], f.pair[0] + 1, f.pair[1], f.pair[1] + 1,
                           f.single[0], f.single[1], f.single[2], f.single[3]};
  for (const uint32_t row : all) {
    atomicAdd(grid + 2 * row, g.x);
    atomicAdd(grid + 2 * row + 1, g.y);
  }
#endif
}

const char* LastError() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

dim3 Grid(int64_t n, int levels) {
  return dim3(static_cast<unsigned>((n + kBlock - 1) / kBlock), static_cast<unsigned>(levels));
}

}  // namespace

const char* LaunchEmptyKernels(int count, cudaStream_t stream) {
  for (int k = 0; k < count; ++k) EmptyKernel<<<1, 32, 0, stream>>>();
  return LastError();
}

const char* LaunchGatherFloor(int64_t n, const float* table, const GatherFloorLevels& levels, float* out,
                              cudaStream_t stream) {
  GatherFloorKernel<<<Grid(n, levels.count), kBlock, 0, stream>>>(n, table, levels, out);
  return LastError();
}

const char* LaunchScatterFloor(int64_t n, const float* dy, const GatherFloorLevels& levels, float* table,
                               int64_t rows, cudaStream_t stream) {
  cudaMemsetAsync(table, 0, static_cast<size_t>(rows) * 2 * sizeof(float), stream);
  ScatterFloorKernel<<<Grid(n, levels.count), kBlock, 0, stream>>>(n, dy, levels, table);
  return LastError();
}

}  // namespace psd3d::bench
