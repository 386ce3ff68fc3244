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
  int32_t dense[kHashGridCudaMaxLevels];  // 1: direct indexing; 0: tcnn's spatial hash (size is then 2^k)
  int64_t offset[kHashGridCudaMaxLevels];
};

// out [n, L·F] (the encoding's final layout) = encoding of x [n,3]; table is [rows, F]. Returns nullptr,
// or the CUDA error of the launch.
const char* LaunchHashGridForward(const float* x, int64_t n, const float* table, const HashGridCudaLevels& levels,
                                  float* out, cudaStream_t stream);

// grad_table [rows, F] += Σ trilinear weight · grad_out [n, L·F] (float atomics, so the summation order
// varies from run to run). grad_table must be zeroed by the caller and 16-byte aligned (any fresh
// allocation is). Returns nullptr, or the CUDA error of the launch.
const char* LaunchHashGridBackward(const float* x, int64_t n, const float* grad_out, const HashGridCudaLevels& levels,
                                   float* grad_table, cudaStream_t stream);

}  // namespace psd3d
