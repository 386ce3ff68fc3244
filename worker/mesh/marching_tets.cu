// CUDA kernels for the topology of marching tetrahedra (see marching_tets_cuda.h): input validation,
// per-edge sign-change flags, per-tet cases and triangle counts, exclusive scans (CUB), and emission of
// crossing edges and faces. The differentiable vertex interpolation stays in LibTorch (marching_tets.cc).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cub/device/device_scan.cuh>

#include "worker/mesh/marching_tets_cuda.h"

namespace psd3d {
namespace {

constexpr int kThreads = 256;
// Device totals live at the start of the scratch buffer, the scans' temporary storage after them.
constexpr size_t kTotalsBytes = 256;
static_assert(sizeof(MarchingTetsTotals) <= kTotalsBytes, "totals must fit their scratch slot");

// The case table in constant memory: threads of a warp mostly read the same entry (broadcast). Passed as a
// kernel argument instead, it was copied to a per-thread local-memory stack frame.
__constant__ MarchingTetsTable kTable = kMarchingTetsTable;

int Blocks(int64_t n) {
  // Grid-stride loops cover the rest; 2^20 blocks keep every SM busy without huge grids.
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, int64_t{1} << 20));
}

template <typename T>
__device__ __forceinline__ bool Inside(const T* sdf, int64_t v) {
  return sdf[v] < T(0);
}

// One launch, three index ranges: vertex i (validation), edge i (sign change), tet i (case, count).
template <typename T>
__global__ void ClassifyKernel(const T* __restrict__ sdf, const T* __restrict__ positions, int64_t num_vertices,
                               const int64_t* __restrict__ edges, int64_t num_edges, const int64_t* __restrict__ tets,
                               int64_t num_tets, int32_t* __restrict__ edge_flags, uint8_t* __restrict__ cases,
                               int32_t* __restrict__ counts, MarchingTetsTotals* __restrict__ totals) {
  const int64_t n = max(num_vertices, max(num_edges, num_tets));
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    if (i == 0) {  // the scans' sentinels: their last outputs become the totals
      edge_flags[num_edges] = 0;
      counts[num_tets] = 0;
    }
    if (i < num_vertices) {
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
    if (i < num_edges) edge_flags[i] = Inside(sdf, edges[2 * i]) != Inside(sdf, edges[2 * i + 1]) ? 1 : 0;
    if (i < num_tets) {
      const int64_t* tet = tets + 4 * i;
      int c = 0;
#pragma unroll
      for (int k = 0; k < 4; ++k) c |= Inside(sdf, tet[k]) ? (1 << k) : 0;
      cases[i] = static_cast<uint8_t>(c);
      counts[i] = kTable.num_triangles[c];
    }
  }
}

__global__ void CopyTotalsKernel(const int32_t* __restrict__ edge_offsets, int64_t num_edges,
                                 const int32_t* __restrict__ tet_offsets, int64_t num_tets,
                                 MarchingTetsTotals* __restrict__ totals) {
  totals->num_vertices = edge_offsets[num_edges];
  totals->num_faces = tet_offsets[num_tets];
}

// One launch, two index ranges: edge i (its output vertex slot), tet i (its triangles).
__global__ void EmitKernel(const int32_t* __restrict__ edge_offsets, int64_t num_edges,
                           const uint8_t* __restrict__ cases, const int32_t* __restrict__ tet_offsets,
                           const int64_t* __restrict__ tet_edges, int64_t num_tets,
                           int64_t* __restrict__ crossing_edges, int64_t* __restrict__ faces) {
  const int64_t n = max(num_edges, num_tets);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    if (i < num_edges) {
      const int32_t slot = edge_offsets[i];
      if (edge_offsets[i + 1] != slot) crossing_edges[slot] = i;
    }
    if (i < num_tets) {
      const int32_t first = tet_offsets[i];
      const int count = tet_offsets[i + 1] - first;
      if (count == 0) continue;
      const int c = cases[i];
      const int64_t* local_edges = tet_edges + 6 * i;
      int64_t* out = faces + 3 * int64_t{first};
      for (int k = 0; k < 3 * count; ++k) out[k] = edge_offsets[local_edges[kTable.triangles[c][k]]];
    }
  }
}

size_t ScanBytes(int64_t n) {
  size_t bytes = 0;
  cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                static_cast<int>(n));
  return bytes;
}

const char* ErrorString(cudaError_t err) { return err == cudaSuccess ? nullptr : cudaGetErrorString(err); }

template <typename T>
const char* Classify(const T* sdf, const T* positions, int64_t num_vertices, const int64_t* edges, int64_t num_edges,
                     const int64_t* tets, int64_t num_tets, int32_t* edge_flags, int32_t* edge_offsets,
                     uint8_t* tet_cases, int32_t* tet_counts, int32_t* tet_offsets, void* scratch, size_t scratch_bytes,
                     MarchingTetsTotals* totals, cudaStream_t stream) {
  if (scratch_bytes < MarchingTetsScratchBytes(num_edges, num_tets)) return "marching tets: scratch buffer too small";
  auto* device_totals = static_cast<MarchingTetsTotals*>(scratch);
  void* scan_temp = static_cast<char*>(scratch) + kTotalsBytes;
  const size_t scan_bytes = scratch_bytes - kTotalsBytes;

  cudaError_t err = cudaMemsetAsync(device_totals, 0, sizeof(MarchingTetsTotals), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  ClassifyKernel<T><<<Blocks(std::max({num_vertices, num_edges, num_tets})), kThreads, 0, stream>>>(
      sdf, positions, num_vertices, edges, num_edges, tets, num_tets, edge_flags, tet_cases, tet_counts, device_totals);
  if (const char* e = ErrorString(cudaGetLastError())) return e;
  size_t bytes = scan_bytes;
  err = cub::DeviceScan::ExclusiveSum(scan_temp, bytes, edge_flags, edge_offsets, static_cast<int>(num_edges + 1),
                                      stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  bytes = scan_bytes;
  err =
      cub::DeviceScan::ExclusiveSum(scan_temp, bytes, tet_counts, tet_offsets, static_cast<int>(num_tets + 1), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  CopyTotalsKernel<<<1, 1, 0, stream>>>(edge_offsets, num_edges, tet_offsets, num_tets, device_totals);
  if (const char* e = ErrorString(cudaGetLastError())) return e;
  // Pageable destination: the copy returns once the data is on the host, after all prior work on the stream.
  err = cudaMemcpyAsync(totals, device_totals, sizeof(MarchingTetsTotals), cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  return ErrorString(err);
}

}  // namespace

size_t MarchingTetsScratchBytes(int64_t num_edges, int64_t num_tets) {
  return kTotalsBytes + std::max<size_t>({ScanBytes(num_edges + 1), ScanBytes(num_tets + 1), size_t{1}});
}

const char* MarchingTetsClassifyCuda(const float* sdf, const float* positions, int64_t num_vertices,
                                     const int64_t* edges, int64_t num_edges, const int64_t* tets, int64_t num_tets,
                                     int32_t* edge_flags, int32_t* edge_offsets, uint8_t* tet_cases,
                                     int32_t* tet_counts, int32_t* tet_offsets, void* scratch, size_t scratch_bytes,
                                     MarchingTetsTotals* totals, cudaStream_t stream) {
  return Classify(sdf, positions, num_vertices, edges, num_edges, tets, num_tets, edge_flags, edge_offsets, tet_cases,
                  tet_counts, tet_offsets, scratch, scratch_bytes, totals, stream);
}

const char* MarchingTetsClassifyCuda(const double* sdf, const double* positions, int64_t num_vertices,
                                     const int64_t* edges, int64_t num_edges, const int64_t* tets, int64_t num_tets,
                                     int32_t* edge_flags, int32_t* edge_offsets, uint8_t* tet_cases,
                                     int32_t* tet_counts, int32_t* tet_offsets, void* scratch, size_t scratch_bytes,
                                     MarchingTetsTotals* totals, cudaStream_t stream) {
  return Classify(sdf, positions, num_vertices, edges, num_edges, tets, num_tets, edge_flags, edge_offsets, tet_cases,
                  tet_counts, tet_offsets, scratch, scratch_bytes, totals, stream);
}

const char* MarchingTetsEmitCuda(const int32_t* edge_offsets, int64_t num_edges, const uint8_t* tet_cases,
                                 const int32_t* tet_offsets, const int64_t* tet_edges, int64_t num_tets,
                                 int64_t* crossing_edges, int64_t* faces, cudaStream_t stream) {
  EmitKernel<<<Blocks(std::max(num_edges, num_tets)), kThreads, 0, stream>>>(
      edge_offsets, num_edges, tet_cases, tet_offsets, tet_edges, num_tets, crossing_edges, faces);
  return ErrorString(cudaGetLastError());
}

}  // namespace psd3d
