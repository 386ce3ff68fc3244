// Launchers for the floor kernels (floors_kernels.cu): plain C++, raw pointers and a stream.
#pragma once

#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d::bench {

inline constexpr int kFloorMaxLevels = 32;

// Offsets and row counts must be even: pairs are read and added as 16-byte vectors.
struct GatherFloorLevels {
  int32_t count = 0;
  uint32_t rows[kFloorMaxLevels];
  int64_t offset[kFloorMaxLevels];
};

// Each returns nullptr, or the CUDA error of its launches.
// `count` empty kernels, back to back.
const char* LaunchEmptyKernels(int count, cudaStream_t stream);
// The fragment pass's gathers and writes for one image (floors.h): ids [P] (−1 empty), faces [F,3]
// int64, clip [V,4] (16-byte aligned), attr [V,C]; writes bary [P,3], depth [P], mask [P], out [P,C].
const char* LaunchFragmentGatherFloor(int64_t pixels, const int64_t* ids, const int64_t* faces, const float* clip,
                                      const float* attr, int channels, float* bary, float* depth, float* mask,
                                      float* out, cudaStream_t stream);
// out [L, n, 2] = per (point, level) the sum of 8 rows of table [rows, 2] (see floors.h).
const char* LaunchGatherFloor(int64_t n, const float* table, const GatherFloorLevels& levels, float* out,
                       cudaStream_t stream);
// table [rows, 2] = 0, then per (point, level) 8 rows += dy [L, n, 2] with 16- and 8-byte atomics.
const char* LaunchScatterFloor(int64_t n, const float* dy, const GatherFloorLevels& levels, float* table, int64_t rows,
                        cudaStream_t stream);

}  // namespace psd3d::bench
