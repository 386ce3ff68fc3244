// Launchers for the hash-grid CUDA kernels (hash_grid.cu). Plain C++: raw pointers, sizes and a stream,
// so the kernels compile with nvcc alone; worker/fields/hash_grid.cc calls them for CUDA tensors.
#pragma once

#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d {

inline constexpr int kHashGridCudaMaxLevels = 32;

// The table layout (hash_grid.h's HashGridLayout) passed by value as a kernel argument.
struct HashGridCudaLevels {
  int32_t count = 0;     // levels L (≤ kHashGridCudaMaxLevels)
  int32_t features = 0;  // F: 1, 2, 4 or 8
  float scale[kHashGridCudaMaxLevels];
  uint32_t resolution[kHashGridCudaMaxLevels];
  uint32_t size[kHashGridCudaMaxLevels];
  int32_t dense[kHashGridCudaMaxLevels];  // 1: direct indexing; 0: tcnn's spatial hash
  int64_t offset[kHashGridCudaMaxLevels];
};

// out_lnf [L, n, F] = encoding of x [n,3] (level-major so that writes coalesce; the caller transposes to
// [n, L·F]). table is [rows, F]. Returns nullptr, or the CUDA error of the launch.
const char* LaunchHashGridForward(const float* x, int64_t n, const float* table, const HashGridCudaLevels& levels,
                                  float* out_lnf, cudaStream_t stream);

// grad_table [rows, F] += Σ trilinear weight · grad_lnf [L, n, F] (atomicAdd); grad_table must be zeroed
// by the caller and aligned to min(F, 4) floats (any fresh allocation is). Returns nullptr, or the
// CUDA error of the launch.
const char* LaunchHashGridBackward(const float* x, int64_t n, const float* grad_lnf, const HashGridCudaLevels& levels,
                                   float* grad_table, cudaStream_t stream);

}  // namespace psd3d
