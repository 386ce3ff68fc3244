// CUDA launchers of the rasterizer (rasterizer.h states the math): the triangle-id pass, and the fused
// fragment pass (barycentrics, depth, mask and attribute interpolation) with its backward. Plain C++:
// no CUDA or Torch headers, so both nvcc (rasterizer.cu) and the host compiler (rasterizer.cc) include
// it. All pointers are device pointers to contiguous arrays; clip arrays [B,V,4] are 16-byte aligned.
#pragma once

#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d {

// Face vertex indices [F,3], int32 or int64 (the kernels read either, so callers never convert).
struct FaceIndices {
  const void* data = nullptr;
  bool is_int64 = true;
  int64_t count = 0;  // F
};

// ---- Triangle-id pass ----

// Scratch of the triangle-id pass, one int64 buffer of RasterScratchWords(B·H·W, B·F) words:
// per-pixel keys, the big-triangle list's counters, and the list.
inline int64_t RasterScratchWords(int64_t pixels, int64_t prims) { return pixels + 1 + (prims > 0 ? prims : 1); }

// Fills keys (the first B·H·W words of `scratch`) with the per-pixel minimum of (order-preserving
// depth bits << 32 | face id), ~0 where no triangle covers the pixel. clip [B,V,4] float32; faces
// with an index outside [0,V) are skipped. A thread per triangle sizes its pixel box; the boxes of up
// to kRasterSmallBox pixels are walked by their warp together (balanced over its lanes), larger
// triangles go to a list that whole thread blocks walk: the same kernel's blocks when its grid is
// large (each claims entries once its own triangles are done), else a second kernel's. Returns
// nullptr, or a CUDA error string.
const char* RasterizeKeysCuda(const float* clip, int64_t batch, int64_t num_vertices, FaceIndices faces,
                              int64_t height, int64_t width, int64_t* scratch, cudaStream_t stream);

// tri_id[i] = the face id of keys[i] (the first `pixels` words of the scratch), or −1.
const char* ResolveTriangleIdsCuda(const int64_t* scratch, int64_t pixels, int64_t* tri_id, cudaStream_t stream);

inline constexpr int kRasterSmallBox = 256;

// ---- Fragment pass (fused barycentrics + depth + mask + interpolation) ----

// Which triangle each pixel shows: either a triangle-id image, or the key buffer of RasterizeKeysCuda
// (the fragment pass then resolves the ids itself and writes them to tri_id_out, saving a pass).
struct PixelTriangles {
  const int64_t* tri_id = nullptr;  // [B·H·W], −1 (or any id outside [0,F)) for empty; or null, then:
  const int64_t* keys = nullptr;    // [B·H·W] keys of RasterizeKeysCuda
  int64_t* tri_id_out = nullptr;    // [B·H·W] written from the keys
};

struct FragmentInputs {
  const float* clip = nullptr;  // [B,V,4]
  int64_t batch = 0, num_vertices = 0, height = 0, width = 0;
  FaceIndices faces;
  const float* attr = nullptr;  // [Ba,V,C] with Ba = attr_batch (1: shared by the batch, or B); null if C = 0
  int64_t attr_batch = 1, channels = 0;
};

// Forward: per pixel, bary [B·H·W,3], depth [B·H·W], mask [B·H·W] and out_attr [B·H·W,C] (may be
// null when C = 0). Pixels whose triangle id is outside [0,F) or whose face has an index outside
// [0,V) are empty (mask 0); a covered pixel with Σaᵢ = 0 gets barycentrics 0, depth 1 and mask 1, as
// in the twin.
const char* FragmentsForwardCuda(const FragmentInputs& in, PixelTriangles tri, float* bary, float* depth, float* mask,
                                 float* out_attr, cudaStream_t stream);

// Backward of FragmentsForwardCuda for triangle ids `tri_id`: upstream gradients grad_bary [B·H·W,3],
// grad_depth [B·H·W], grad_out_attr [B·H·W,C], each may be null (zero). Accumulates (16-byte float
// atomics on Hopper) into grad_clip [B,V,4] and grad_attr [Ba,V,S] with S = grad_attr_stride, a
// multiple of 4 ≥ C (channels C..S−1 receive zeros), both 16-byte aligned and zero-filled by the
// caller; either may be null (not needed).
const char* FragmentsBackwardCuda(const FragmentInputs& in, const int64_t* tri_id, const float* grad_bary,
                                  const float* grad_depth, const float* grad_out_attr, float* grad_clip,
                                  float* grad_attr, int64_t grad_attr_stride, cudaStream_t stream);

}  // namespace psd3d
