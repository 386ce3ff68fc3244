// CUDA launcher of the triangle-id pass (rasterizer.h states the math). Plain C++: no CUDA or Torch
// headers, so both nvcc (rasterizer.cu) and the host compiler (rasterizer.cc) include it.
#pragma once

#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d {

// Device pointers, all contiguous:
//   clip      [B,V,4] float32 clip-space vertices
//   faces     [F,3] int32 vertex indices (faces with an index outside [0,V) are skipped)
//   keys      [B·H·W] scratch: per-pixel (order-preserving depth bits << 32 | face id), minimised
//   big_list  [B·F] scratch: (b·F + f) of triangles whose pixel box is too large for one thread
//   big_count [1] scratch
//   tri_id    [B·H·W] output: face id, or −1
// One thread per triangle walks boxes of up to kRasterSmallBox pixels; larger triangles go to a list
// that whole thread blocks walk. Returns nullptr, or a CUDA error string.
const char* RasterizeTriangleIdsCuda(const float* clip, int64_t batch, int64_t num_vertices, const int32_t* faces,
                                     int64_t num_faces, int64_t height, int64_t width, unsigned long long* keys,
                                     int64_t* big_list, int32_t* big_count, int64_t* tri_id, cudaStream_t stream);

inline constexpr int kRasterSmallBox = 64;

}  // namespace psd3d
