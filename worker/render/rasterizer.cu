// CUDA triangle-id pass (rasterizer.h states the math, rasterizer_cuda.h the launcher's contract).
//
// Every float operation of the coverage and depth test is an explicit round-to-nearest intrinsic
// (__fmul_rn, __fsub_rn, ...), which nvcc never contracts into fused multiply-adds: the results are
// then bit-identical to the LibTorch twin, which performs the same IEEE operations one tensor op at a
// time, and the two paths pick the same triangle for every pixel.
#include <cuda_runtime.h>

#include <cstdint>

#include "worker/render/rasterizer_cuda.h"

namespace psd3d {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBigBlocks = 1024;
constexpr unsigned long long kEmptyKey = ~0ull;

struct Triangle {
  float x[3], y[3], z[3], w[3];
};

// Loads triangle f of batch element b; false when it must be skipped (bad index, a vertex at w <= 0,
// or a non-finite coordinate).
__device__ bool LoadTriangle(const float* clip, int64_t num_vertices, const int32_t* faces, int64_t b, int64_t f,
                             Triangle& t) {
  for (int k = 0; k < 3; ++k) {
    const int32_t v = faces[3 * f + k];
    if (v < 0 || v >= num_vertices) return false;
    const float* c = clip + (b * num_vertices + v) * 4;
    t.x[k] = c[0];
    t.y[k] = c[1];
    t.z[k] = c[2];
    t.w[k] = c[3];
    if (!(t.w[k] > 0.f) || !isfinite(t.x[k]) || !isfinite(t.y[k]) || !isfinite(t.z[k]) || !isfinite(t.w[k])) {
      return false;
    }
  }
  return true;
}

// Pixel box of the triangle's screen projection, clamped to the image; false when empty. Generous by
// up to one pixel per side (floor/ceil), which the exact coverage test makes harmless.
__device__ bool PixelBox(const Triangle& t, int height, int width, int& c0, int& c1, int& r0, int& r1) {
  float xmin = 3.4e38f, xmax = -3.4e38f, ymin = 3.4e38f, ymax = -3.4e38f;
  for (int k = 0; k < 3; ++k) {
    const float x = t.x[k] / t.w[k], y = t.y[k] / t.w[k];
    xmin = fminf(xmin, x);
    xmax = fmaxf(xmax, x);
    ymin = fminf(ymin, y);
    ymax = fmaxf(ymax, y);
  }
  auto clampf = [](float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); };
  const float fw = static_cast<float>(width), fh = static_cast<float>(height);
  // Column c's centre is at NDC x = (2c+1)/W − 1, i.e. c = (x+1)·W/2 − ½; row r's at y = 1 − (2r+1)/H.
  c0 = max(static_cast<int>(floorf(clampf((xmin + 1.f) * (0.5f * fw) - 0.5f, -2.f, fw + 1.f))), 0);
  c1 = min(static_cast<int>(ceilf(clampf((xmax + 1.f) * (0.5f * fw) - 0.5f, -2.f, fw + 1.f))), width - 1);
  r0 = max(static_cast<int>(floorf(clampf((1.f - ymax) * (0.5f * fh) - 0.5f, -2.f, fh + 1.f))), 0);
  r1 = min(static_cast<int>(ceilf(clampf((1.f - ymin) * (0.5f * fh) - 0.5f, -2.f, fh + 1.f))), height - 1);
  return c0 <= c1 && r0 <= r1;
}

// Pixel-centre NDC coordinates, the same float32 operations as PixelCentresNdc in rasterizer.cc.
__device__ float ColumnNdc(int c, int width) {
  return __fsub_rn(__fdiv_rn(static_cast<float>(2 * c + 1), static_cast<float>(width)), 1.f);
}
__device__ float RowNdc(int r, int height) {
  return __fsub_rn(1.f, __fdiv_rn(static_cast<float>(2 * r + 1), static_cast<float>(height)));
}

// Coverage and depth test of one pixel centre; on a hit, atomicMin of the packed key into *pixel.
__device__ void TestPixel(const Triangle& t, uint32_t face, float fx, float fy, unsigned long long* pixel) {
  float px[3], py[3];
  for (int k = 0; k < 3; ++k) {
    px[k] = __fsub_rn(t.x[k], __fmul_rn(fx, t.w[k]));
    py[k] = __fsub_rn(t.y[k], __fmul_rn(fy, t.w[k]));
  }
  const float a0 = __fsub_rn(__fmul_rn(px[1], py[2]), __fmul_rn(py[1], px[2]));
  const float a1 = __fsub_rn(__fmul_rn(px[2], py[0]), __fmul_rn(py[2], px[0]));
  const float a2 = __fsub_rn(__fmul_rn(px[0], py[1]), __fmul_rn(py[0], px[1]));
  const float sum = __fadd_rn(__fadd_rn(a0, a1), a2);
  const bool inside =
      (a0 >= 0.f && a1 >= 0.f && a2 >= 0.f && sum > 0.f) || (a0 <= 0.f && a1 <= 0.f && a2 <= 0.f && sum < 0.f);
  if (!inside) return;
  const float num = __fadd_rn(__fadd_rn(__fmul_rn(a0, t.z[0]), __fmul_rn(a1, t.z[1])), __fmul_rn(a2, t.z[2]));
  const float den = __fadd_rn(__fadd_rn(__fmul_rn(a0, t.w[0]), __fmul_rn(a1, t.w[1])), __fmul_rn(a2, t.w[2]));
  const float d = __fdiv_rn(num, den);
  if (!(d >= -1.f && d <= 1.f)) return;
  // Order-preserving map of float bits to unsigned: negatives flip all bits, positives the sign bit.
  const uint32_t bits = __float_as_uint(d);
  const uint32_t ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  const unsigned long long key = (static_cast<unsigned long long>(ordered) << 32) | face;
  if (*pixel > key) atomicMin(pixel, key);  // a stale read only costs an extra atomic
}

__global__ void RasterSmallKernel(const float* clip, int64_t batch, int64_t num_vertices, const int32_t* faces,
                                  int64_t num_faces, int height, int width, unsigned long long* keys, int64_t* big_list,
                                  int32_t* big_count) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= batch * num_faces) return;
  const int64_t b = p / num_faces, f = p % num_faces;
  Triangle t;
  int c0, c1, r0, r1;
  if (!LoadTriangle(clip, num_vertices, faces, b, f, t) || !PixelBox(t, height, width, c0, c1, r0, r1)) return;
  const int64_t area = static_cast<int64_t>(c1 - c0 + 1) * (r1 - r0 + 1);
  if (area > kRasterSmallBox) {
    big_list[atomicAdd(big_count, 1)] = p;
    return;
  }
  unsigned long long* image = keys + b * height * width;
  for (int r = r0; r <= r1; ++r) {
    const float fy = RowNdc(r, height);
    for (int c = c0; c <= c1; ++c) {
      TestPixel(t, static_cast<uint32_t>(f), ColumnNdc(c, width), fy, image + static_cast<int64_t>(r) * width + c);
    }
  }
}

// One block per large triangle (grid-stride over the list), its threads striding over the pixel box.
__global__ void RasterBigKernel(const float* clip, int64_t num_vertices, const int32_t* faces, int64_t num_faces,
                                int height, int width, unsigned long long* keys, const int64_t* big_list,
                                const int32_t* big_count) {
  const int count = *big_count;
  for (int i = blockIdx.x; i < count; i += gridDim.x) {
    const int64_t p = big_list[i];
    const int64_t b = p / num_faces, f = p % num_faces;
    Triangle t;
    int c0, c1, r0, r1;
    if (!LoadTriangle(clip, num_vertices, faces, b, f, t) || !PixelBox(t, height, width, c0, c1, r0, r1)) continue;
    const int64_t box_w = c1 - c0 + 1;
    const int64_t area = box_w * (r1 - r0 + 1);
    unsigned long long* image = keys + b * height * width;
    for (int64_t k = threadIdx.x; k < area; k += blockDim.x) {
      const int r = r0 + static_cast<int>(k / box_w), c = c0 + static_cast<int>(k % box_w);
      TestPixel(t, static_cast<uint32_t>(f), ColumnNdc(c, width), RowNdc(r, height),
                image + static_cast<int64_t>(r) * width + c);
    }
  }
}

__global__ void ResolveKernel(const unsigned long long* keys, int64_t n, int64_t* tri_id) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const unsigned long long k = keys[i];
  tri_id[i] = k == kEmptyKey ? -1 : static_cast<int64_t>(k & 0xffffffffull);
}

int64_t Blocks(int64_t n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

const char* RasterizeTriangleIdsCuda(const float* clip, int64_t batch, int64_t num_vertices, const int32_t* faces,
                                     int64_t num_faces, int64_t height, int64_t width, unsigned long long* keys,
                                     int64_t* big_list, int32_t* big_count, int64_t* tri_id, cudaStream_t stream) {
  const int64_t pixels = batch * height * width;
  if (pixels == 0) return nullptr;
  cudaError_t err = cudaMemsetAsync(keys, 0xff, pixels * sizeof(unsigned long long), stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(big_count, 0, sizeof(int32_t), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  const int64_t prims = batch * num_faces;
  if (prims > 0) {
    const int h = static_cast<int>(height), w = static_cast<int>(width);
    RasterSmallKernel<<<Blocks(prims), kThreads, 0, stream>>>(clip, batch, num_vertices, faces, num_faces, h, w, keys,
                                                              big_list, big_count);
    const int64_t big_blocks = prims < kMaxBigBlocks ? prims : kMaxBigBlocks;
    RasterBigKernel<<<big_blocks, kThreads, 0, stream>>>(clip, num_vertices, faces, num_faces, h, w, keys, big_list,
                                                         big_count);
  }
  ResolveKernel<<<Blocks(pixels), kThreads, 0, stream>>>(keys, pixels, tri_id);
  err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace psd3d
