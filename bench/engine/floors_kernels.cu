// Floor kernels (floors.h): the hash grid's random L2 requests with no index or weight math, the
// fragment pass's gathers with no barycentric math, and an empty kernel for the launch cost.
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

// Per pixel: its triangle id, the face's three vertex ids (issued together), the three clip rows (one
// 16-byte load each) and the three attribute rows; written: 3 + 1 + 1 + C floats of sums.
__global__ void FragmentGatherFloorKernel(int64_t pixels, const int64_t* __restrict__ ids,
                                          const int64_t* __restrict__ faces, const float4* __restrict__ clip,
                                          const float* __restrict__ attr, int channels, float* __restrict__ bary,
                                          float* __restrict__ depth, float* __restrict__ mask,
                                          float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  if (i >= pixels) return;
  const int64_t id = ids[i];
  float b[3] = {0.f, 0.f, 0.f}, d = 0.f;
  float* o = out + i * channels;
  if (id >= 0) {
    const int64_t v0 = faces[3 * id], v1 = faces[3 * id + 1], v2 = faces[3 * id + 2];
    const float4 p0 = __ldg(clip + v0), p1 = __ldg(clip + v1), p2 = __ldg(clip + v2);
    b[0] = p0.x + p1.x;
    b[1] = p1.y + p2.y;
    b[2] = p2.z + p0.z;
    d = p0.w + p1.w + p2.w;
    for (int c = 0; c < channels; ++c) {
      o[c] = __ldg(attr + v0 * channels + c) + __ldg(attr + v1 * channels + c) + __ldg(attr + v2 * channels + c);
    }
  } else {
    for (int c = 0; c < channels; ++c) o[c] = 0.f;
  }
#pragma unroll
  for (int k = 0; k < 3; ++k) bary[3 * i + k] = b[k];
  depth[i] = d;
  mask[i] = id >= 0 ? 1.f : 0.f;
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

const char* LaunchFragmentGatherFloor(int64_t pixels, const int64_t* ids, const int64_t* faces, const float* clip,
                                      const float* attr, int channels, float* bary, float* depth, float* mask,
                                      float* out, cudaStream_t stream) {
  FragmentGatherFloorKernel<<<static_cast<unsigned>((pixels + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
      pixels, ids, faces, reinterpret_cast<const float4*>(clip), attr, channels, bary, depth, mask, out);
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
