// Hash-grid encoding kernels: the same math as the pure-LibTorch twin in hash_grid.cc (see hash_grid.h).
//
// Schedule. Levels are processed in groups of G = 8/F, so that one point's G·F values of a group are
// one 32-byte sector of its [n, L·F] row; blockIdx.y is the group, so blocks run group by group and
// the group's table slices (≤ G · 4 MiB by default) stay in L2 while points gather from them (tcnn
// runs level by level for the same reason). One launch covers all levels, and neither pass transposes:
//  - forward: a block is P points × the G levels of its group, one (point, level) per thread (the most
//    gathers in flight) with level-uniform warps; it stages its outputs in shared memory and writes
//    each point's sector whole, so y comes out in its final layout.
//  - backward: one thread per (point, group) reads its dy sector once, as autograd hands it over.
//
// Pairs. The two vertices that differ along x share a 16-byte pair of rows whenever the first index is
// even (for F = 2): tcnn's hash XORs x into the low bits (x ⊕ y·p1 ⊕ z·p2), so for even x the rows are
// r and r ⊕ 1; dense levels index x + y·res + …, so the rows are r, r + 1. Such a pair is read with one
// float4 load and added with one float4 atomic (Hopper has 8- and 16-byte float atomics on global
// memory): 6 instead of 8 L2 requests per (point, level) on average.
//
// Backward. Table gradients are scattered with float atomics, which L2 executes: on an H100 with 2^20
// random points a level costs ~80 µs of atomics against ~45 µs of gathers in the forward. When points
// are coherent (samples along rays, as a NeRF batch is), neighbouring lanes hit the same rows of the
// coarse levels and same-address atomics serialise, so a warp that has runs of lanes with equal rows
// sums each run with shuffles first and issues one atomic per run (measured with 2^20 ray samples:
// 1.25 → 0.95 ms; unchanged for random points, where the check is one ballot per vertex pair).
// Privatising the coarse levels in shared memory was measured and dropped: shared-memory float
// atomics are compare-and-swap loops on sm_90 (ATOMS.CAST.SPIN), which saved 3% on random points and
// cost 40% on coherent ones.
#include <cuda_runtime.h>

#include <cstdint>

#include "worker/fields/hash_grid_cuda.h"

namespace psd3d {
namespace {

constexpr int kBlock = 256;
constexpr uint32_t kPrimeY = 2654435761u;  // tcnn's coherent_prime_hash (x uses 1)
constexpr uint32_t kPrimeZ = 805459861u;

// Levels per thread: G·F = 8 floats, one 32-byte sector of the output row.
template <int F>
__host__ __device__ constexpr int GroupSize() {
  return F >= 8 ? 1 : 8 / F;
}

// ---- Per-level geometry ----

// The point's coordinates clamped to [0,1]; fmaxf returns the other operand for NaN, so a NaN
// coordinate reads as 0 (the twin does the same).
__device__ __forceinline__ void LoadPoint(const float* __restrict__ x, int64_t i, float p[3]) {
#pragma unroll
  for (int d = 0; d < 3; ++d) p[d] = fminf(fmaxf(__ldg(x + 3 * i + d), 0.0f), 1.0f);
}

// The 8 vertices of the point's cell at one level: rows within the level and trilinear weights.
// Corner c = 4z + 2y + x (bit d of c is the offset along axis d), so corners 2k and 2k+1 are the
// x-neighbours of pair k.
struct Corners {
  uint32_t row[8];
  float weight[8];
};

// index mod size: hashed levels have size 2^k (res³ > size forces the cap); a dense index is below
// 2·size (the upper vertex can be res, see hash_grid.h), so one subtraction suffices; the % never runs
// for valid layouts and only keeps a wrong one in bounds.
__device__ __forceinline__ uint32_t DenseMod(uint32_t index, uint32_t size) {
  if (index >= size) index -= size;
  if (index >= size) index %= size;
  return index;
}

__device__ __forceinline__ Corners CornersAt(const HashGridCudaLevels& lv, int level, const float p[3]) {
  const float scale = lv.scale[level];
  uint32_t cell[3];
  float frac[3];
#pragma unroll
  for (int d = 0; d < 3; ++d) {
    const float pos = fmaf(scale, p[d], 0.5f);
    const float c = floorf(pos);
    frac[d] = pos - c;
    cell[d] = static_cast<uint32_t>(c);  // 0 ≤ c ≤ scale + 0.5 < 2^21
  }
  Corners k;
  const uint32_t size = lv.size[level];
  if (lv.dense[level]) {
    const uint32_t res = lv.resolution[level];  // res³ ≤ 2^26: no overflow
#pragma unroll
    for (int pair = 0; pair < 4; ++pair) {
      const uint32_t base = cell[0] + (cell[1] + (pair & 1)) * res + (cell[2] + (pair >> 1)) * res * res;
      k.row[2 * pair] = DenseMod(base, size);
      k.row[2 * pair + 1] = DenseMod(base + 1, size);
    }
  } else {
    const uint32_t mask = size - 1;
    const uint32_t hy[2] = {cell[1] * kPrimeY, (cell[1] + 1) * kPrimeY};
    const uint32_t hz[2] = {cell[2] * kPrimeZ, (cell[2] + 1) * kPrimeZ};
#pragma unroll
    for (int pair = 0; pair < 4; ++pair) {
      const uint32_t h = hy[pair & 1] ^ hz[pair >> 1];
      k.row[2 * pair] = (cell[0] ^ h) & mask;
      k.row[2 * pair + 1] = ((cell[0] + 1) ^ h) & mask;
    }
  }
  // ((w_x · w_y) · w_z): the multiplication order of the twin.
  const float wx[2] = {1.0f - frac[0], frac[0]}, wy[2] = {1.0f - frac[1], frac[1]};
  const float wz[2] = {1.0f - frac[2], frac[2]};
#pragma unroll
  for (int c = 0; c < 8; ++c) k.weight[c] = wx[c & 1] * wy[(c >> 1) & 1] * wz[c >> 2];
  return k;
}

// ---- Vector loads of K consecutive floats (K = G·F = 8 in the kernels) ----

// dst[0..count) = src[0..count), the rest 0; float4 loads when `vec` (16-byte aligned, count == K).
template <int K>
__device__ __forceinline__ void LoadFloats(const float* __restrict__ src, int count, bool vec, float (&dst)[K]) {
  if constexpr (K % 4 == 0) {
    if (vec && count == K) {
#pragma unroll
      for (int q = 0; q < K / 4; ++q) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(src) + q);
        dst[4 * q] = v.x, dst[4 * q + 1] = v.y, dst[4 * q + 2] = v.z, dst[4 * q + 3] = v.w;
      }
      return;
    }
  }
#pragma unroll
  for (int k = 0; k < K; ++k) dst[k] = k < count ? __ldg(src + k) : 0.0f;
}

// ---- Forward ----

// Reads rows r0 and r1 of `grid` ([rows, F]); with kPairs (F ≤ 2, grid aligned to 2F floats) an aligned
// pair {r, r ⊕ 1} comes with one vector load.
template <int F, bool kPairs>
__device__ __forceinline__ void GatherPair(const float* __restrict__ grid, uint32_t r0, uint32_t r1, float (&a)[F],
                                           float (&b)[F]) {
  if constexpr (kPairs && F == 2) {
    if ((r0 ^ r1) == 1) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(grid) + (r0 >> 1));
      const bool odd = r0 & 1;
      a[0] = odd ? v.z : v.x, a[1] = odd ? v.w : v.y;
      b[0] = odd ? v.x : v.z, b[1] = odd ? v.y : v.w;
      return;
    }
  } else if constexpr (kPairs && F == 1) {
    if ((r0 ^ r1) == 1) {
      const float2 v = __ldg(reinterpret_cast<const float2*>(grid) + (r0 >> 1));
      a[0] = (r0 & 1) ? v.y : v.x;
      b[0] = (r0 & 1) ? v.x : v.y;
      return;
    }
  }
  if constexpr (F == 2) {
    const float2 u = __ldg(reinterpret_cast<const float2*>(grid) + r0);
    const float2 v = __ldg(reinterpret_cast<const float2*>(grid) + r1);
    a[0] = u.x, a[1] = u.y, b[0] = v.x, b[1] = v.y;
  } else if constexpr (F % 4 == 0) {
#pragma unroll
    for (int f = 0; f < F; f += 4) {
      const float4 u = __ldg(reinterpret_cast<const float4*>(grid + static_cast<size_t>(r0) * F + f));
      const float4 v = __ldg(reinterpret_cast<const float4*>(grid + static_cast<size_t>(r1) * F + f));
      a[f] = u.x, a[f + 1] = u.y, a[f + 2] = u.z, a[f + 3] = u.w;
      b[f] = v.x, b[f + 1] = v.y, b[f + 2] = v.z, b[f + 3] = v.w;
    }
  } else {
    a[0] = __ldg(grid + r0);
    b[0] = __ldg(grid + r1);
  }
}

// feature = Σ_c weight_c · grid[row_c], summed over corners 0..7 in order (as the twin).
template <int F, bool kPairs>
__device__ __forceinline__ void InterpolateLevel(const float* __restrict__ grid, const Corners& k, float* acc) {
#pragma unroll
  for (int f = 0; f < F; ++f) acc[f] = 0.0f;
#pragma unroll
  for (int pair = 0; pair < 4; ++pair) {
    float a[F], b[F];
    GatherPair<F, kPairs>(grid, k.row[2 * pair], k.row[2 * pair + 1], a, b);
#pragma unroll
    for (int f = 0; f < F; ++f) {
      acc[f] = fmaf(k.weight[2 * pair], a[f], acc[f]);
      acc[f] = fmaf(k.weight[2 * pair + 1], b[f], acc[f]);
    }
  }
}

// out [n, L·F]. A block is P points × the G levels of its group, one (point, level) per thread with
// warps level-uniform (tcnn's thread per (point, level): the most gathers in flight); the block stages
// its P × G·F outputs in shared memory and writes each point's 32-byte sector whole.
template <int F, bool kPairs>
__global__ void __launch_bounds__(kBlock)
    ForwardKernel(const float* __restrict__ x, int64_t n, const float* __restrict__ table, HashGridCudaLevels lv,
                  float* __restrict__ out) {
  constexpr int G = GroupSize<F>(), K = G * F, P = kBlock / G;
  __shared__ float tile[P * K];
  const int j = threadIdx.x / P, t = threadIdx.x % P;  // level within the group, point within the block
  const int first = blockIdx.y * G;
  const int count = min(G, lv.count - first);
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * P;
  if (p0 + t < n && j < count) {
    float p[3];
    LoadPoint(x, p0 + t, p);
    const int level = first + j;
    float acc[F];
    InterpolateLevel<F, kPairs>(table + lv.offset[level] * F, CornersAt(lv, level, p), acc);
#pragma unroll
    for (int f = 0; f < F; ++f) tile[t * K + j * F + f] = acc[f];
  }
  __syncthreads();
  const int64_t stride = static_cast<int64_t>(lv.count) * F;
  const int points = static_cast<int>(n - p0 < P ? n - p0 : P);
  const int width = count * F;  // floats per point in this group
  float* __restrict__ dst = out + p0 * stride + first * F;
  if (width == K && stride % 2 == 0 && reinterpret_cast<uintptr_t>(out) % 8 == 0) {
    for (int q = threadIdx.x; q < points * (K / 2); q += kBlock) {  // 4 lanes fill one point's sector
      const int pt = q / (K / 2), e = 2 * (q % (K / 2));
      *reinterpret_cast<float2*>(dst + pt * stride + e) = make_float2(tile[pt * K + e], tile[pt * K + e + 1]);
    }
  } else {
    for (int q = threadIdx.x; q < points * width; q += kBlock) {
      const int pt = q / width, e = q % width;
      dst[pt * stride + e] = tile[pt * K + e];
    }
  }
}

// ---- Backward ----

// row[0..F) += v[0..F) with float atomics: one 8- or 16-byte vector atomic where Hopper has them.
template <int F>
__device__ __forceinline__ void AtomicAddRowScalar(float* row, const float* v) {
#pragma unroll
  for (int f = 0; f < F; ++f) atomicAdd(row + f, v[f]);
}

template <int F>
__device__ __forceinline__ void AtomicAddRow(float* row, const float* v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (F % 4 == 0) {
#pragma unroll
    for (int f = 0; f < F; f += 4) {
      atomicAdd(reinterpret_cast<float4*>(row + f), make_float4(v[f], v[f + 1], v[f + 2], v[f + 3]));
    }
  } else if constexpr (F == 2) {
    atomicAdd(reinterpret_cast<float2*>(row), make_float2(v[0], v[1]));
  } else {
    AtomicAddRowScalar<F>(row, v);
  }
#else
  AtomicAddRowScalar<F>(row, v);
#endif
}

// grid[r0] += a, grid[r1] += b; for F ≤ 2 an aligned pair {r, r ⊕ 1} with one atomic twice as wide
// (Hopper; grid is 16-byte aligned, see LaunchHashGridBackward).
template <int F>
__device__ __forceinline__ void ScatterPair(float* grid, uint32_t r0, uint32_t r1, const float (&a)[F],
                                            const float (&b)[F]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (F == 1 || F == 2) {
    if ((r0 ^ r1) == 1) {
      const bool odd = r0 & 1;
      if constexpr (F == 2) {
        const float4 v = odd ? make_float4(b[0], b[1], a[0], a[1]) : make_float4(a[0], a[1], b[0], b[1]);
        atomicAdd(reinterpret_cast<float4*>(grid) + (r0 >> 1), v);
      } else {
        const float2 v = odd ? make_float2(b[0], a[0]) : make_float2(a[0], b[0]);
        atomicAdd(reinterpret_cast<float2*>(grid) + (r0 >> 1), v);
      }
      return;
    }
  }
#endif
  AtomicAddRow<F>(grid + static_cast<size_t>(r0) * F, a);
  AtomicAddRow<F>(grid + static_cast<size_t>(r1) * F, b);
}

template <int F>
__device__ __forceinline__ bool AllZero(const float* g) {
  bool zero = true;
#pragma unroll
  for (int f = 0; f < F; ++f) zero = zero && g[f] == 0.0f;
  return zero;
}

// Sums vals over each run of lanes with equal keys (`heads` marks the first lane of every run; runs are
// consecutive lanes) into the run's first lane: a segmented suffix sum, 5 shuffle steps.
template <int V>
__device__ __forceinline__ void SumRuns(unsigned heads, int lane, float (&vals)[V]) {
  const int run = __popc(heads & (0xffffffffu >> (31 - lane)));  // runs that start at or before lane
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    float other[V];
#pragma unroll
    for (int v = 0; v < V; ++v) other[v] = __shfl_down_sync(0xffffffffu, vals[v], d);
    const int src = lane + d;
    if (src < 32 && __popc(heads & (0xffffffffu >> (31 - src))) == run) {
#pragma unroll
      for (int v = 0; v < V; ++v) vals[v] += other[v];
    }
  }
}

constexpr uint32_t kNoRow = 0xffffffffu;  // the key of a lane with nothing to add (rows are < 2^26)

// grad_table[rows of level] += weight · g for the 8 corners. Called by all 32 lanes of the warp; lanes
// with `active` false add nothing. Neighbouring lanes whose points share a cell (coherent points, e.g.
// samples along a ray, on the coarse levels) would serialise on the same L2 address, so when a warp has
// such runs they are summed with shuffles first and each run issues one atomic.
template <int F>
__device__ __forceinline__ void ScatterLevel(float* grid, const Corners& k, const float* g, bool active) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int pair = 0; pair < 4; ++pair) {
    const uint32_t r0 = active ? k.row[2 * pair] : kNoRow, r1 = active ? k.row[2 * pair + 1] : kNoRow;
    float v[2 * F];  // [a | b]: the two rows' additions
#pragma unroll
    for (int f = 0; f < F; ++f) {
      v[f] = k.weight[2 * pair] * g[f];
      v[F + f] = k.weight[2 * pair + 1] * g[f];
    }
    const uint32_t up0 = __shfl_up_sync(0xffffffffu, r0, 1), up1 = __shfl_up_sync(0xffffffffu, r1, 1);
    const bool head = lane == 0 || up0 != r0 || up1 != r1;
    const unsigned heads = __ballot_sync(0xffffffffu, head);
    if (heads != 0xffffffffu) SumRuns<2 * F>(heads, lane, v);  // warp-uniform branch
    if (active && head) {
      float a[F], b[F];
#pragma unroll
      for (int f = 0; f < F; ++f) a[f] = v[f], b[f] = v[F + f];
      ScatterPair<F>(grid, r0, r1, a, b);
    }
  }
}

// grad_table += the table gradient; grad_out is [n, L·F]. Lanes past n stay to the end (inactive)
// because ScatterLevel needs the whole warp.
template <int F>
__global__ void __launch_bounds__(kBlock)
    BackwardKernel(const float* __restrict__ x, int64_t n, const float* __restrict__ grad_out, HashGridCudaLevels lv,
                   float* __restrict__ grad_table) {
  constexpr int G = GroupSize<F>(), K = G * F;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int first = blockIdx.y * G;
  const int count = min(G, lv.count - first);
  const bool in_range = i < n;
  const int64_t stride = static_cast<int64_t>(lv.count) * F;
  const bool vec = stride % 4 == 0 && reinterpret_cast<uintptr_t>(grad_out) % 16 == 0;
  float g[K] = {};
  float p[3] = {0.0f, 0.0f, 0.0f};
  if (in_range) {
    LoadFloats<K>(grad_out + i * stride + first * F, count * F, vec, g);
    LoadPoint(x, i, p);
  }
#pragma unroll
  for (int j = 0; j < G; ++j) {
    if (j >= count) break;  // block-uniform
    const int level = first + j;
    const bool active = in_range && !AllZero<F>(g + j * F);
    ScatterLevel<F>(grad_table + lv.offset[level] * F, CornersAt(lv, level, p), g + j * F, active);
  }
}

// ---- Launch helpers ----

const char* LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

bool BadArguments(int64_t n, const HashGridCudaLevels& lv) {
  // The forward's blocks hold as few as kBlock / 8 points.
  return n < 0 || (n + kBlock / 8 - 1) / (kBlock / 8) > 0x7fffffff || lv.count < 1 ||
         lv.count > kHashGridCudaMaxLevels;
}

// Pair access needs the table aligned to two rows (16 bytes for F=2, 8 for F=1): any fresh allocation
// is, a view at an odd row offset is not.
bool PairsAligned(const void* table, int features) {
  return features <= 2 && reinterpret_cast<uintptr_t>(table) % (2 * features * sizeof(float)) == 0;
}

template <int F>
void LaunchForward(const float* x, int64_t n, const float* table, const HashGridCudaLevels& lv, float* out,
                   cudaStream_t stream) {
  constexpr int G = GroupSize<F>(), P = kBlock / G;
  const dim3 grid(static_cast<unsigned>((n + P - 1) / P), static_cast<unsigned>((lv.count + G - 1) / G));
  if (PairsAligned(table, F)) {
    ForwardKernel<F, true><<<grid, kBlock, 0, stream>>>(x, n, table, lv, out);
  } else {
    ForwardKernel<F, false><<<grid, kBlock, 0, stream>>>(x, n, table, lv, out);
  }
}

template <int F>
void LaunchBackward(const float* x, int64_t n, const float* grad_out, const HashGridCudaLevels& lv, float* grad_table,
                    cudaStream_t stream) {
  constexpr int G = GroupSize<F>();
  const dim3 grid(static_cast<unsigned>((n + kBlock - 1) / kBlock), static_cast<unsigned>((lv.count + G - 1) / G));
  BackwardKernel<F><<<grid, kBlock, 0, stream>>>(x, n, grad_out, lv, grad_table);
}

}  // namespace

const char* LaunchHashGridForward(const float* x, int64_t n, const float* table, const HashGridCudaLevels& levels,
                                  float* out, cudaStream_t stream) {
  if (BadArguments(n, levels)) return "hash grid forward: bad point count or level count";
  if (n == 0) return nullptr;
  switch (levels.features) {
    case 1: LaunchForward<1>(x, n, table, levels, out, stream); break;
    case 2: LaunchForward<2>(x, n, table, levels, out, stream); break;
    case 4: LaunchForward<4>(x, n, table, levels, out, stream); break;
    case 8: LaunchForward<8>(x, n, table, levels, out, stream); break;
    default: return "hash grid forward: features per level must be 1, 2, 4 or 8";
  }
  return LastError();
}

const char* LaunchHashGridBackward(const float* x, int64_t n, const float* grad_out, const HashGridCudaLevels& levels,
                                   float* grad_table, cudaStream_t stream) {
  if (BadArguments(n, levels)) return "hash grid backward: bad point count or level count";
  // The vector atomics (pairs of rows for F ≤ 2, 16-byte chunks for F ≥ 4) need 16-byte alignment.
  if (reinterpret_cast<uintptr_t>(grad_table) % 16 != 0) return "hash grid backward: misaligned grad_table";
  if (n == 0) return nullptr;
  switch (levels.features) {
    case 1: LaunchBackward<1>(x, n, grad_out, levels, grad_table, stream); break;
    case 2: LaunchBackward<2>(x, n, grad_out, levels, grad_table, stream); break;
    case 4: LaunchBackward<4>(x, n, grad_out, levels, grad_table, stream); break;
    case 8: LaunchBackward<8>(x, n, grad_out, levels, grad_table, stream); break;
    default: return "hash grid backward: features per level must be 1, 2, 4 or 8";
  }
  return LastError();
}

}  // namespace psd3d
