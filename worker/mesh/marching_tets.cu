// CUDA kernels of marching tetrahedra (see marching_tets_cuda.h): input validation, per-tet cases and
// triangle counts with the crossing edges marked by the tets that have triangles, one exclusive scan
// (CUB) over the edge flags and tet counts together, and emission of crossing edges, faces and the
// interpolated vertices; plus the vertices' backward.
//
// The whole op is: memset, classify, scan, emit (and in backward a zero fill and one kernel), with one
// wait in the middle for the output sizes.
//
// On MakeTetGrid's grid the same op runs a thread per grid vertex instead (the "grid" kernels): tet and
// edge ids are arithmetic (kuhn_grid.h), a vertex counts its own crossing forward edges, and as corner
// 0 of a cube it classifies the cube's six tets from the 8 corner signs. Nothing but the sdf (and the
// positions) is read, where the general path reads 4 int64 ids per tet (50 MB at N = 64), and the scan
// runs over V + N³ counts instead of E + T.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cub/device/device_scan.cuh>

#include "worker/mesh/kuhn_grid.h"
#include "worker/mesh/marching_tets_cuda.h"

namespace psd3d {
namespace {

constexpr int kThreads = 256;
constexpr size_t kAlign = 256;
static_assert(sizeof(MarchingTetsTotals) <= kAlign, "totals must fit their workspace slot");

// The case table in constant memory: threads of a warp mostly read the same entry (broadcast). Passed as a
// kernel argument instead, it was copied to a per-thread local-memory stack frame.
__constant__ MarchingTetsTable kTable = kMarchingTetsTable;
// Local edge k of a tet joins its vertices kEdgeEnds[k] (tet_grid.h's kTetEdgeVertices; the GPU parity
// tests compare crossing edges with the twin, which uses the grid's own table).
__constant__ int8_t kEdgeEnds[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The workspace: totals, then one int32 array of E+1 edge flags (the last a zero sentinel) followed by
// T+1 tet triangle counts, so that a single memset clears totals and flags and a single scan numbers
// both; then its exclusive scan, the tet cases, and the scan's temporary storage.
struct Workspace {
  MarchingTetsTotals* totals;
  int32_t* flags;    // [E+1+T+1]: edge flags, then tet counts
  int32_t* offsets;  // [E+1+T+1]: the exclusive scan of flags
  uint8_t* cases;    // [T]
  void* scan_temp;
  size_t scan_bytes;
};

int64_t ScanLength(int64_t num_edges, int64_t num_tets) { return num_edges + 1 + num_tets + 1; }

size_t ScanBytes(int64_t n) {
  size_t bytes = 0;
  cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                static_cast<int>(n));
  return std::max<size_t>(bytes, 1);
}

// Totals and flags are adjacent (flags start at kAlign) so one memset covers both.
__host__ Workspace Carve(void* base, int64_t num_edges, int64_t num_tets) {
  const int64_t n = ScanLength(num_edges, num_tets);
  char* p = static_cast<char*>(base);
  Workspace w;
  w.totals = reinterpret_cast<MarchingTetsTotals*>(p);
  p += kAlign;
  w.flags = reinterpret_cast<int32_t*>(p);
  p += AlignUp(n * sizeof(int32_t));
  w.offsets = reinterpret_cast<int32_t*>(p);
  p += AlignUp(n * sizeof(int32_t));
  w.cases = reinterpret_cast<uint8_t*>(p);
  p += AlignUp(num_tets);
  w.scan_temp = p;
  w.scan_bytes = ScanBytes(n);
  return w;
}

int Blocks(int64_t n) {
  // Grid-stride loops cover the rest; 2^20 blocks keep every SM busy without huge grids.
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, int64_t{1} << 20));
}

// Blocks of the classify kernel: one resident wave (8 blocks of 256 threads per multiprocessor), each
// thread striding over several tets. Every block ends with two atomics on the same two counters, and
// same-address atomics serialize in L2: a block per 256 tets (6k blocks at N = 64) made them half of
// the kernel's time.
int ClassifyBlocks(int64_t n) {
  static const int wave = [] {
    int device = 0, sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) {
      cudaGetLastError();  // clear, and fall back to an H100's count
      sms = 132;
    }
    return 8 * sms;
  }();
  return std::min(Blocks(n), wave);
}

// An event per host thread (created once, never destroyed) to wait for the totals' copy alone while
// the stream goes on with the scan.
cudaEvent_t TotalsEvent() {
  static thread_local cudaEvent_t event = [] {
    cudaEvent_t e = nullptr;
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      e = nullptr;
    }
    return e;
  }();
  return event;
}

template <typename T>
__device__ __forceinline__ bool Inside(const T* sdf, int64_t v) {
  return sdf[v] < T(0);
}

// Sums two per-thread counts over the block and adds them to *a and *b with one atomic each.
__device__ void BlockAtomicAdd(int x, int y, int32_t* a, int32_t* b) {
  __shared__ int partial[2][kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) {
    x += __shfl_down_sync(0xffffffffu, x, o);
    y += __shfl_down_sync(0xffffffffu, y, o);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    partial[0][warp] = x;
    partial[1][warp] = y;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int sx = 0, sy = 0;
    for (int k = 0; k < kThreads / 32; ++k) {
      sx += partial[0][k];
      sy += partial[1][k];
    }
    if (sx != 0) atomicAdd(a, sx);
    if (sy != 0) atomicAdd(b, sy);
  }
}

// Counts vertex i's non-finite sdf value and position row (atomics only when there is one).
template <typename T>
__device__ __forceinline__ void CountNonFinite(const T* sdf, const T* positions, int64_t i, MarchingTetsTotals* totals) {
  const T s = sdf[i];
  if (isnan(s)) atomicAdd(&totals->sdf_nan, 1);
  if (isinf(s)) atomicAdd(&totals->sdf_inf, 1);
  if (positions != nullptr) {
    const T x = positions[3 * i], y = positions[3 * i + 1], z = positions[3 * i + 2];
    if (isnan(x) || isnan(y) || isnan(z)) {
      atomicAdd(&totals->positions_nan, 1);
    } else if (isinf(x) || isinf(y) || isinf(z)) {
      atomicAdd(&totals->positions_inf, 1);
    }
  }
}

// One launch, two index ranges: vertex i (validation), tet i (case, count, crossing edges). Every
// thread reaches the block reduction at the end (no early exits).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    ClassifyKernel(const T* __restrict__ sdf, const T* __restrict__ positions, int64_t num_vertices,
                   const int64_t* __restrict__ tets, const int64_t* __restrict__ tet_edges, int64_t num_tets,
                   int64_t num_edges, Workspace w) {
  int32_t* counts = w.flags + num_edges + 1;
  int new_vertices = 0, faces = 0;
  const int64_t n = max(num_vertices, num_tets);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    if (i == 0) counts[num_tets] = 0;  // the scan's sentinel (the edge flags' is cleared by the memset)
    if (i < num_vertices) CountNonFinite(sdf, positions, i, w.totals);
    if (i < num_tets) {
      const int64_t* tet = tets + 4 * i;
      int c = 0;
#pragma unroll
      for (int k = 0; k < 4; ++k) c |= Inside(sdf, tet[k]) ? (1 << k) : 0;
      w.cases[i] = static_cast<uint8_t>(c);
      const int count = kTable.num_triangles[c];
      counts[i] = count;
      faces += count;
      if (count > 0) {
        // The tet's sign-changing edges; the first tet to flag an edge counts its output vertex.
#pragma unroll
        for (int k = 0; k < 6; ++k) {
          if (((c >> kEdgeEnds[k][0]) ^ (c >> kEdgeEnds[k][1])) & 1) {
            if (atomicExch(w.flags + tet_edges[6 * i + k], 1) == 0) ++new_vertices;
          }
        }
      }
    }
  }
  BlockAtomicAdd(new_vertices, faces, &w.totals->num_vertices, &w.totals->num_faces);
}

// The twin's operations one IEEE rounding at a time (no contraction into fused multiply-adds), so the
// vertices are bit-identical to InterpolateCrossings'.
__device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double Mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float Sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double Sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float Div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double Div(double a, double b) { return __ddiv_rn(a, b); }

// A thread per tet; the tets with triangles (a few percent) write them, and each of their crossing
// edges' id and vertex. An edge shared by several such tets is written by each with the same bits
// (its ends' ids are taken in the grid's (lo, hi) order, and the formula is antisymmetric in the ends
// anyway), so no pass over all edges is needed.
template <typename T>
__global__ void EmitKernel(const int32_t* __restrict__ offsets, int32_t num_crossings, int64_t num_edges,
                           const uint8_t* __restrict__ cases, const int64_t* __restrict__ tets,
                           const int64_t* __restrict__ tet_edges, int64_t num_tets, int64_t* __restrict__ crossing_edges,
                           int64_t* __restrict__ faces, const T* __restrict__ positions, const T* __restrict__ sdf,
                           T* __restrict__ vertices) {
  // Tet t's first triangle is offsets[E+1+t] − M (the flags before it sum to M).
  const int32_t* tet_offsets = offsets + num_edges + 1;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < num_tets; i += int64_t{gridDim.x} * blockDim.x) {
    const int c = cases[i];
    const int count = kTable.num_triangles[c];
    if (count == 0) continue;
    const int64_t* local_edges = tet_edges + 6 * i;
    int64_t* out = faces + 3 * int64_t{tet_offsets[i] - num_crossings};
    for (int k = 0; k < 3 * count; ++k) out[k] = offsets[local_edges[kTable.triangles[c][k]]];
#pragma unroll
    for (int k = 0; k < 6; ++k) {
      const int u = kEdgeEnds[k][0], v = kEdgeEnds[k][1];
      if ((((c >> u) ^ (c >> v)) & 1) == 0) continue;
      const int64_t e = local_edges[k];
      const int32_t slot = offsets[e];
      crossing_edges[slot] = e;
      if (vertices == nullptr) continue;
      const int64_t tu = tets[4 * i + u], tv = tets[4 * i + v];
      const int64_t a = min(tu, tv), b = max(tu, tv);  // the edge's (lo, hi), as InterpolateCrossings reads it
      const T sa = sdf[a], sb = sdf[b], d = Sub(sb, sa);
#pragma unroll
      for (int j = 0; j < 3; ++j) {
        vertices[3 * int64_t{slot} + j] = Div(Sub(Mul(positions[3 * a + j], sb), Mul(positions[3 * b + j], sa)), d);
      }
    }
  }
}

template <typename T>
__global__ void VertexBackwardKernel(const int64_t* __restrict__ edges, const int64_t* __restrict__ crossing_edges,
                                     int64_t num_crossings, const T* __restrict__ positions, const T* __restrict__ sdf,
                                     const T* __restrict__ grad_vertices, T* __restrict__ grad_positions,
                                     T* __restrict__ grad_sdf) {
  const int64_t m = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (m >= num_crossings) return;
  const int64_t e = crossing_edges[m], a = edges[2 * e], b = edges[2 * e + 1];
  const T sa = sdf[a], sb = sdf[b], inv = T(1) / (sb - sa);
  const T g[3] = {grad_vertices[3 * m], grad_vertices[3 * m + 1], grad_vertices[3 * m + 2]};
  if (grad_positions != nullptr) {
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      atomicAdd(grad_positions + 3 * a + k, g[k] * sb * inv);
      atomicAdd(grad_positions + 3 * b + k, -g[k] * sa * inv);
    }
  }
  if (grad_sdf != nullptr) {
    T dot = 0;
#pragma unroll
    for (int k = 0; k < 3; ++k) dot += g[k] * (positions[3 * a + k] - positions[3 * b + k]);
    const T q = dot * inv * inv;
    atomicAdd(grad_sdf + a, sb * q);
    atomicAdd(grad_sdf + b, -sa * q);
  }
}

const char* ErrorString(cudaError_t err) { return err == cudaSuccess ? nullptr : cudaGetErrorString(err); }

// Page-locked host memory for the totals, one slot per host thread (allocated once, never freed): the
// copy then goes straight to the host without a staging buffer. Null if the allocation failed (the
// caller's pageable memory is used instead).
MarchingTetsTotals* PinnedTotals() {
  static thread_local MarchingTetsTotals* pinned = [] {
    void* p = nullptr;
    if (cudaMallocHost(&p, sizeof(MarchingTetsTotals)) != cudaSuccess) {
      cudaGetLastError();
      p = nullptr;
    }
    return static_cast<MarchingTetsTotals*>(p);
  }();
  return pinned;
}

// The totals' copy to the host, then the exclusive scan of counts[0..n) (which needs no sizes) while the
// host waits for the copy alone: the host's reaction to the copy (allocating the outputs, launching
// emit) then overlaps the scan instead of leaving the GPU idle.
const char* CopyTotalsThenScan(const MarchingTetsTotals* device_totals, const int32_t* counts, int32_t* offsets,
                               void* scan_temp, size_t scan_bytes, int64_t n, MarchingTetsTotals* totals,
                               cudaStream_t stream) {
  MarchingTetsTotals* pinned = PinnedTotals();
  cudaEvent_t copied = TotalsEvent();
  cudaError_t err = cudaMemcpyAsync(pinned != nullptr ? pinned : totals, device_totals, sizeof(MarchingTetsTotals),
                                    cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess && copied != nullptr) err = cudaEventRecord(copied, stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  size_t bytes = scan_bytes;
  err = cub::DeviceScan::ExclusiveSum(scan_temp, bytes, counts, offsets, static_cast<int>(n), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  err = copied != nullptr ? cudaEventSynchronize(copied) : cudaStreamSynchronize(stream);
  if (err == cudaSuccess && pinned != nullptr) *totals = *pinned;
  return ErrorString(err);
}

// Memset, classify, then the totals' copy and the scan.
template <typename T>
const char* Classify(const T* sdf, const T* positions, int64_t num_vertices, const int64_t* tets,
                     const int64_t* tet_edges, int64_t num_tets, int64_t num_edges, void* workspace,
                     MarchingTetsTotals* totals, cudaStream_t stream) {
  if (ScanLength(num_edges, num_tets) >= (int64_t{1} << 31)) return "marching tets: grid too large for int32 offsets";
  const Workspace w = Carve(workspace, num_edges, num_tets);
  cudaError_t err = cudaMemsetAsync(w.totals, 0, kAlign + (num_edges + 1) * sizeof(int32_t), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  ClassifyKernel<T><<<ClassifyBlocks(std::max(num_vertices, num_tets)), kThreads, 0, stream>>>(
      sdf, positions, num_vertices, tets, tet_edges, num_tets, num_edges, w);
  if (const char* e = ErrorString(cudaGetLastError())) return e;
  return CopyTotalsThenScan(w.totals, w.flags, w.offsets, w.scan_temp, w.scan_bytes, ScanLength(num_edges, num_tets),
                            totals, stream);
}

template <typename T>
const char* Emit(const void* workspace, const MarchingTetsTotals& totals, int64_t num_edges, const int64_t* tets,
                 const int64_t* tet_edges, int64_t num_tets, int64_t* crossing_edges, int64_t* faces,
                 const T* positions, const T* sdf, T* vertices, cudaStream_t stream) {
  if (totals.num_vertices == 0 && totals.num_faces == 0) return nullptr;  // nothing to number or emit
  const Workspace w = Carve(const_cast<void*>(workspace), num_edges, num_tets);
  EmitKernel<T><<<Blocks(num_tets), kThreads, 0, stream>>>(w.offsets, totals.num_vertices, num_edges, w.cases, tets,
                                                           tet_edges, num_tets, crossing_edges, faces, positions, sdf,
                                                           vertices);
  return ErrorString(cudaGetLastError());
}

template <typename T>
const char* VertexBackward(const int64_t* edges, const int64_t* crossing_edges, int64_t num_crossings,
                           const T* positions, const T* sdf, const T* grad_vertices, T* grad_positions, T* grad_sdf,
                           cudaStream_t stream) {
  if (num_crossings == 0 || (grad_positions == nullptr && grad_sdf == nullptr)) return nullptr;
  VertexBackwardKernel<T><<<Blocks(num_crossings), kThreads, 0, stream>>>(
      edges, crossing_edges, num_crossings, positions, sdf, grad_vertices, grad_positions, grad_sdf);
  return ErrorString(cudaGetLastError());
}


// ---- The grid path: MakeTetGrid's layout, a thread per grid vertex ----

// Vertex and cube counts of an N grid, and the scan's length: V + 1 vertex counts (the last a zero
// sentinel), then C + 1 cube triangle counts.
struct GridSize {
  int64_t n, side, num_vertices, num_cubes;
  explicit __host__ __device__ GridSize(int64_t cells)
      : n(cells), side(cells + 1), num_vertices(side * side * side), num_cubes(cells * cells * cells) {}
  __host__ __device__ int64_t scan_length() const { return num_vertices + 1 + num_cubes + 1; }
};

struct GridWorkspace {
  MarchingTetsTotals* totals;
  int32_t* counts;       // [V+1+C+1]: crossing forward edges per vertex, then triangles per cube
  int32_t* offsets;      // their exclusive scan
  uint8_t* edge_masks;   // [V]: bit d set when the vertex's edge in direction d crosses zero
  uint8_t* cube_signs;   // [C]: bit c set when corner c of the cube is inside
  void* scan_temp;
  size_t scan_bytes;
};

__host__ GridWorkspace CarveGrid(void* base, const GridSize& g) {
  const int64_t n = g.scan_length();
  char* p = static_cast<char*>(base);
  GridWorkspace w;
  w.totals = reinterpret_cast<MarchingTetsTotals*>(p);
  p += kAlign;
  w.counts = reinterpret_cast<int32_t*>(p);
  p += AlignUp(n * sizeof(int32_t));
  w.offsets = reinterpret_cast<int32_t*>(p);
  p += AlignUp(n * sizeof(int32_t));
  w.edge_masks = reinterpret_cast<uint8_t*>(p);
  p += AlignUp(g.num_vertices);
  w.cube_signs = reinterpret_cast<uint8_t*>(p);
  p += AlignUp(g.num_cubes);
  w.scan_temp = p;
  w.scan_bytes = ScanBytes(n);
  return w;
}

// Vertex v's cell coordinates (ids fit int32: the launchers check V + C + 2 < 2^31).
struct GridVertex {
  int32_t i, j, k;
  __device__ GridVertex(int32_t v, int32_t side) : i(v % side), j((v / side) % side), k(v / (side * side)) {}
};

// Case of Kuhn tet l from its cube's corner signs.
__device__ __forceinline__ int KuhnCase(uint32_t signs, int l) {
  int c = 0;
#pragma unroll
  for (int q = 0; q < 4; ++q) c |= static_cast<int>((signs >> KuhnCorner(l, q)) & 1u) << q;
  return c;
}

// Vertex v validates its values, marks and counts its crossing forward edges and, when it is a cube's
// corner 0, stores the cube's corner signs and counts its triangles. Every thread reaches the block
// reduction at the end.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    GridClassifyKernel(const T* __restrict__ sdf, const T* __restrict__ positions, GridSize g, GridWorkspace w) {
  const int32_t side = static_cast<int32_t>(g.side), num_vertices = static_cast<int32_t>(g.num_vertices);
  int32_t* cube_counts = w.counts + num_vertices + 1;
  int new_vertices = 0, faces = 0;
  for (int32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < num_vertices; v += gridDim.x * blockDim.x) {
    if (v == 0) w.counts[num_vertices] = cube_counts[g.num_cubes] = 0;  // the scan's sentinels
    CountNonFinite(sdf, positions, v, w.totals);
    const GridVertex x(v, side);
    const uint32_t valid = KuhnForwardMask(g.n, x.i, x.j, x.k);
    const bool inside = Inside(sdf, v);
    uint32_t signs = inside ? 1u : 0u, crossing = 0;
#pragma unroll
    for (int d = 0; d < 7; ++d) {
      if (((valid >> d) & 1u) == 0) continue;
      const bool other = Inside(sdf, v + KuhnDirectionOffset(d, side));
      signs |= static_cast<uint32_t>(other) << (d + 1);
      if (other != inside) crossing |= 1u << d;
    }
    const int count = __popc(crossing);
    w.edge_masks[v] = static_cast<uint8_t>(crossing);
    w.counts[v] = count;
    new_vertices += count;
    if (valid == 0x7Fu) {  // all seven directions: the vertex is corner 0 of a cube
      int triangles = 0;
#pragma unroll
      for (int l = 0; l < 6; ++l) triangles += kTable.num_triangles[KuhnCase(signs, l)];
      const int64_t cube = x.i + g.n * (x.j + g.n * x.k);
      w.cube_signs[cube] = static_cast<uint8_t>(signs);
      cube_counts[cube] = triangles;
      faces += triangles;
    }
  }
  BlockAtomicAdd(new_vertices, faces, &w.totals->num_vertices, &w.totals->num_faces);
}

// Vertex v writes its crossing edges' ids and vertices (slots offsets[v]…, in direction order, which is
// edge id order), and as a cube's corner 0 the cube's triangles (tet by tet, as the twin orders them).
// A triangle corner on the edge from corner a to corner b is that edge's slot: the scan offset of its
// lower end a & b plus the crossing edges of that end in earlier directions.
template <typename T>
__global__ void GridEmitKernel(const int32_t* __restrict__ offsets, const uint8_t* __restrict__ edge_masks,
                               const uint8_t* __restrict__ cube_signs, int32_t num_crossings, GridSize g,
                               int64_t* __restrict__ crossing_edges, int64_t* __restrict__ faces,
                               const T* __restrict__ positions, const T* __restrict__ sdf, T* __restrict__ vertices) {
  const int32_t side = static_cast<int32_t>(g.side), num_vertices = static_cast<int32_t>(g.num_vertices);
  const int32_t* cube_offsets = offsets + num_vertices + 1;
  for (int32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < num_vertices; v += gridDim.x * blockDim.x) {
    const GridVertex x(v, side);
    const uint32_t valid = KuhnForwardMask(g.n, x.i, x.j, x.k);
    const uint32_t crossing = edge_masks[v];
    if (crossing != 0) {
      const int64_t first_edge = KuhnEdgesBefore(g.n, x.i, x.j, x.k);
      int64_t slot = offsets[v];
#pragma unroll
      for (int d = 0; d < 7; ++d) {
        if (((crossing >> d) & 1u) == 0) continue;
        crossing_edges[slot] = first_edge + __popc(valid & ((1u << d) - 1u));
        if (vertices != nullptr) {
          const int64_t a = v, b = v + KuhnDirectionOffset(d, side);  // (lo, hi), as InterpolateCrossings reads it
          const T sa = sdf[a], sb = sdf[b], den = Sub(sb, sa);
#pragma unroll
          for (int j = 0; j < 3; ++j) {
            vertices[3 * slot + j] = Div(Sub(Mul(positions[3 * a + j], sb), Mul(positions[3 * b + j], sa)), den);
          }
        }
        ++slot;
      }
    }
    if (valid != 0x7Fu) continue;  // not a cube's corner 0
    const int64_t cube = x.i + g.n * (x.j + g.n * x.k);
    const int32_t first_face = cube_offsets[cube];
    if (cube_offsets[cube + 1] == first_face) continue;
    int64_t* out = faces + 3 * int64_t{first_face - num_crossings};
    const uint32_t signs = cube_signs[cube];
    for (int l = 0; l < 6; ++l) {
      const int c = KuhnCase(signs, l);
      const int count = 3 * kTable.num_triangles[c];
      for (int q = 0; q < count; ++q) {
        const int edge = kTable.triangles[c][q];
        const int a = KuhnCorner(l, kEdgeEnds[edge][0]), b = KuhnCorner(l, kEdgeEnds[edge][1]);
        const int32_t lo = v + static_cast<int32_t>(KuhnCornerOffset(a & b, side));
        *out++ = offsets[lo] + __popc(edge_masks[lo] & ((1u << ((a ^ b) - 1)) - 1u));
      }
    }
  }
}

// The scan's length and its largest value (M ≤ E crossing edges plus K ≤ 12 triangles per cube) must
// fit int32.
const char* CheckGridSize(const GridSize& g) {
  const int64_t largest = KuhnNumEdges(g.n) + 12 * g.num_cubes + 2;
  return g.scan_length() >= (int64_t{1} << 31) || largest >= (int64_t{1} << 31)
             ? "marching tets: grid too large for int32 offsets"
             : nullptr;
}

template <typename T>
const char* GridClassify(const T* sdf, const T* positions, int64_t n, void* workspace, MarchingTetsTotals* totals,
                         cudaStream_t stream) {
  const GridSize g(n);
  if (const char* e = CheckGridSize(g)) return e;
  const GridWorkspace w = CarveGrid(workspace, g);
  cudaError_t err = cudaMemsetAsync(w.totals, 0, sizeof(MarchingTetsTotals), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  GridClassifyKernel<T><<<ClassifyBlocks(g.num_vertices), kThreads, 0, stream>>>(sdf, positions, g, w);
  if (const char* e = ErrorString(cudaGetLastError())) return e;
  return CopyTotalsThenScan(w.totals, w.counts, w.offsets, w.scan_temp, w.scan_bytes, g.scan_length(), totals, stream);
}

template <typename T>
const char* GridEmit(const void* workspace, const MarchingTetsTotals& totals, int64_t n, int64_t* crossing_edges,
                     int64_t* faces, const T* positions, const T* sdf, T* vertices, cudaStream_t stream) {
  if (totals.num_vertices == 0 && totals.num_faces == 0) return nullptr;
  const GridSize g(n);
  if (const char* e = CheckGridSize(g)) return e;
  const GridWorkspace w = CarveGrid(const_cast<void*>(workspace), g);
  GridEmitKernel<T><<<Blocks(g.num_vertices), kThreads, 0, stream>>>(w.offsets, w.edge_masks, w.cube_signs,
                                                                     totals.num_vertices, g, crossing_edges, faces,
                                                                     positions, sdf, vertices);
  return ErrorString(cudaGetLastError());
}

}  // namespace

size_t MarchingTetsWorkspaceBytes(int64_t num_edges, int64_t num_tets) {
  const int64_t n = ScanLength(num_edges, num_tets);
  return kAlign + 2 * AlignUp(n * sizeof(int32_t)) + AlignUp(num_tets) + ScanBytes(n);
}

const char* MarchingTetsClassifyCuda(const float* sdf, const float* positions, int64_t num_vertices,
                                     const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                     int64_t num_edges, void* workspace, MarchingTetsTotals* totals,
                                     cudaStream_t stream) {
  return Classify(sdf, positions, num_vertices, tets, tet_edges, num_tets, num_edges, workspace, totals, stream);
}

const char* MarchingTetsClassifyCuda(const double* sdf, const double* positions, int64_t num_vertices,
                                     const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                     int64_t num_edges, void* workspace, MarchingTetsTotals* totals,
                                     cudaStream_t stream) {
  return Classify(sdf, positions, num_vertices, tets, tet_edges, num_tets, num_edges, workspace, totals, stream);
}

const char* MarchingTetsEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t num_edges,
                                 const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                 int64_t* crossing_edges, int64_t* faces, const float* positions, const float* sdf,
                                 float* vertices, cudaStream_t stream) {
  return Emit(workspace, totals, num_edges, tets, tet_edges, num_tets, crossing_edges, faces, positions, sdf, vertices,
              stream);
}

const char* MarchingTetsEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t num_edges,
                                 const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                 int64_t* crossing_edges, int64_t* faces, const double* positions, const double* sdf,
                                 double* vertices, cudaStream_t stream) {
  return Emit(workspace, totals, num_edges, tets, tet_edges, num_tets, crossing_edges, faces, positions, sdf, vertices,
              stream);
}

const char* MarchingTetsVertexBackwardCuda(const int64_t* edges, const int64_t* crossing_edges, int64_t num_crossings,
                                           const float* positions, const float* sdf, const float* grad_vertices,
                                           float* grad_positions, float* grad_sdf, cudaStream_t stream) {
  return VertexBackward(edges, crossing_edges, num_crossings, positions, sdf, grad_vertices, grad_positions, grad_sdf,
                        stream);
}

const char* MarchingTetsVertexBackwardCuda(const int64_t* edges, const int64_t* crossing_edges, int64_t num_crossings,
                                           const double* positions, const double* sdf, const double* grad_vertices,
                                           double* grad_positions, double* grad_sdf, cudaStream_t stream) {
  return VertexBackward(edges, crossing_edges, num_crossings, positions, sdf, grad_vertices, grad_positions, grad_sdf,
                        stream);
}

size_t MarchingTetsGridWorkspaceBytes(int64_t n) {
  const GridSize g(n);
  return kAlign + 2 * AlignUp(g.scan_length() * sizeof(int32_t)) + AlignUp(g.num_vertices) + AlignUp(g.num_cubes) +
         ScanBytes(g.scan_length());
}

const char* MarchingTetsGridClassifyCuda(const float* sdf, const float* positions, int64_t n, void* workspace,
                                         MarchingTetsTotals* totals, cudaStream_t stream) {
  return GridClassify(sdf, positions, n, workspace, totals, stream);
}

const char* MarchingTetsGridClassifyCuda(const double* sdf, const double* positions, int64_t n, void* workspace,
                                         MarchingTetsTotals* totals, cudaStream_t stream) {
  return GridClassify(sdf, positions, n, workspace, totals, stream);
}

const char* MarchingTetsGridEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t n,
                                     int64_t* crossing_edges, int64_t* faces, const float* positions, const float* sdf,
                                     float* vertices, cudaStream_t stream) {
  return GridEmit(workspace, totals, n, crossing_edges, faces, positions, sdf, vertices, stream);
}

const char* MarchingTetsGridEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t n,
                                     int64_t* crossing_edges, int64_t* faces, const double* positions,
                                     const double* sdf, double* vertices, cudaStream_t stream) {
  return GridEmit(workspace, totals, n, crossing_edges, faces, positions, sdf, vertices, stream);
}

}  // namespace psd3d
