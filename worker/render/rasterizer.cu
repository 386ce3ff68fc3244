// CUDA kernels of the rasterizer (rasterizer.h states the math, rasterizer_cuda.h the launchers'
// contracts): the triangle-id pass and the fused fragment pass with its backward.
//
// Every float operation of the coverage and depth test, and of the barycentric areas, is an explicit
// round-to-nearest intrinsic (__fmul_rn, __fsub_rn, ...), which nvcc never contracts into fused
// multiply-adds: the results are then bit-identical to the LibTorch twin, which performs the same IEEE
// operations one tensor op at a time, so the two paths pick the same triangle for every pixel and
// agree on the barycentrics to the rounding of one sum.
#include <cuda_runtime.h>

#include <cstdint>

#include "worker/render/rasterizer_cuda.h"

namespace psd3d {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr unsigned long long kEmptyKey = ~0ull;

struct Triangle {
  float x[3], y[3], z[3], w[3];
};

// The three vertex ids of face f; false if one is outside [0,V). The three loads are issued before
// any check: a check between them would make each load wait for the one before (three memory
// latencies in a row instead of one, on the path of every kernel here).
template <typename I>
__device__ __forceinline__ bool FaceCorners(const I* faces, int64_t f, int64_t num_vertices, int64_t (&v)[3]) {
#pragma unroll
  for (int k = 0; k < 3; ++k) v[k] = static_cast<int64_t>(faces[3 * f + k]);
  bool valid = true;
#pragma unroll
  for (int k = 0; k < 3; ++k) valid = valid && v[k] >= 0 && v[k] < num_vertices;
  return valid;
}

// One 16-byte load per corner (the launchers' contract keeps clip 16-byte aligned).
__device__ __forceinline__ void LoadCorners(const float* clip, int64_t num_vertices, int64_t b, const int64_t (&v)[3],
                                            Triangle& t) {
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    const float4 c = __ldg(reinterpret_cast<const float4*>(clip) + b * num_vertices + v[k]);
    t.x[k] = c.x;
    t.y[k] = c.y;
    t.z[k] = c.z;
    t.w[k] = c.w;
  }
}

// Loads triangle f of batch element b for the id pass; false when it must be skipped (bad index, a
// vertex at w <= 0, or a non-finite coordinate).
template <typename I>
__device__ bool LoadDrawableTriangle(const float* clip, int64_t num_vertices, const I* faces, int64_t b, int64_t f,
                                     Triangle& t) {
  int64_t v[3];
  if (!FaceCorners(faces, f, num_vertices, v)) return false;
  LoadCorners(clip, num_vertices, b, v, t);
  for (int k = 0; k < 3; ++k) {
    if (!(t.w[k] > 0.f) || !isfinite(t.x[k]) || !isfinite(t.y[k]) || !isfinite(t.z[k]) || !isfinite(t.w[k])) {
      return false;
    }
  }
  return true;
}

// Pixel box of the triangle's screen projection, clamped to the image; false when empty. A covered
// pixel centre lies within the projected vertices' extent, so in pixel units (centre of column c at
// c + ½) columns ceil(xmin − ½) .. floor(xmax − ½) suffice. The margin (1/64 pixel, plus 2⁻¹⁸ of the
// coordinate) is far above the rounding of x/w and of the scaling for any image up to 2¹⁴ pixels, so
// the box stays a superset of the pixels that the exact coverage test accepts, and tight: small
// triangles test few pixels.
__device__ bool PixelBox(const Triangle& t, int height, int width, int& c0, int& c1, int& r0, int& r1) {
  float xmin = 3.4e38f, xmax = -3.4e38f, ymin = 3.4e38f, ymax = -3.4e38f;
  for (int k = 0; k < 3; ++k) {
    const float inv_w = 1.f / t.w[k];
    const float x = t.x[k] * inv_w, y = t.y[k] * inv_w;
    xmin = fminf(xmin, x);
    xmax = fmaxf(xmax, x);
    ymin = fminf(ymin, y);
    ymax = fmaxf(ymax, y);
  }
  const float fw = static_cast<float>(width), fh = static_cast<float>(height);
  // Pixel coordinate of an NDC coordinate, less ½ (so that centres are integers), clamped to a
  // little beyond the image.
  auto first = [](float v, float n) {
    v = fminf(fmaxf(v, -2.f), n + 1.f);
    return static_cast<int>(ceilf(v - (0.015625f + fabsf(v) * 3.8147e-6f)));
  };
  auto last = [](float v, float n) {
    v = fminf(fmaxf(v, -2.f), n + 1.f);
    return static_cast<int>(floorf(v + (0.015625f + fabsf(v) * 3.8147e-6f)));
  };
  // Column c's centre is at NDC x = (2c+1)/W − 1, i.e. c = (x+1)·W/2 − ½; row r's at y = 1 − (2r+1)/H.
  c0 = max(first((xmin + 1.f) * (0.5f * fw) - 0.5f, fw), 0);
  c1 = min(last((xmax + 1.f) * (0.5f * fw) - 0.5f, fw), width - 1);
  r0 = max(first((1.f - ymax) * (0.5f * fh) - 0.5f, fh), 0);
  r1 = min(last((1.f - ymin) * (0.5f * fh) - 0.5f, fh), height - 1);
  return c0 <= c1 && r0 <= r1;
}

// Pixel-centre NDC coordinates: the same float32 values as PixelCentresNdc in rasterizer.cc, whose
// (2i+1)/n is a true division. Here without the division routine: with y = RN(1/n), q = RN(a·y) and
// the exact residual r = fma(−q, n, a), RN(q + r·y) is the correctly rounded a/n (Markstein's theorem
// for positive normal floats; checked exhaustively for every n ≤ 16384 and odd a < 2n).
struct PixelGrid {
  float w, h, inv_w, inv_h;
};

__device__ __forceinline__ PixelGrid MakePixelGrid(int width, int height) {
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  return {w, h, __frcp_rn(w), __frcp_rn(h)};
}

__device__ __forceinline__ float DivideRn(float a, float b, float inv_b) {
  const float q = __fmul_rn(a, inv_b);
  return __fmaf_rn(__fmaf_rn(-q, b, a), inv_b, q);
}

__device__ __forceinline__ float ColumnNdc(int c, const PixelGrid& g) {
  return __fsub_rn(DivideRn(static_cast<float>(2 * c + 1), g.w, g.inv_w), 1.f);
}
__device__ __forceinline__ float RowNdc(int r, const PixelGrid& g) {
  return __fsub_rn(1.f, DivideRn(static_cast<float>(2 * r + 1), g.h, g.inv_h));
}

// The pixel-relative corners qₖ = (xₖ − fx·wₖ, yₖ − fy·wₖ) and the areas aₖ = cross(qₖ₊₁, qₖ₊₂) of a
// pixel centre (fx, fy), with the twin's operations.
struct Areas {
  float qx[3], qy[3], a[3], sum;
};

__device__ __forceinline__ Areas PixelAreas(const Triangle& t, float fx, float fy) {
  Areas p;
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    p.qx[k] = __fsub_rn(t.x[k], __fmul_rn(fx, t.w[k]));
    p.qy[k] = __fsub_rn(t.y[k], __fmul_rn(fy, t.w[k]));
  }
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    const int k1 = (k + 1) % 3, k2 = (k + 2) % 3;
    p.a[k] = __fsub_rn(__fmul_rn(p.qx[k1], p.qy[k2]), __fmul_rn(p.qy[k1], p.qx[k2]));
  }
  p.sum = __fadd_rn(__fadd_rn(p.a[0], p.a[1]), p.a[2]);
  return p;
}

// ---- Triangle-id pass ----

// Coverage and depth test of one pixel centre; on a hit, atomicMin of the packed key into *pixel.
__device__ void TestPixel(const Triangle& t, uint32_t face, float fx, float fy, unsigned long long* pixel) {
  const Areas p = PixelAreas(t, fx, fy);
  const float a0 = p.a[0], a1 = p.a[1], a2 = p.a[2], sum = p.sum;
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
  // Fire-and-forget: a read of the current key first (to skip hopeless atomics) stalled the warp on
  // the L2 round trip and measured 20% slower on the 200k-triangle sphere.
  atomicMin(pixel, key);
}

// The scratch buffer (rasterizer_cuda.h): keys, then a word of two counters, then the big-triangle
// list. The launcher fills keys and counters (and, when the small kernel walks the list itself, the
// list) with 0xff in one memset, so the counters start at 0xffffffff: "counter + 1" (unsigned,
// wrapping) is the number of listed, or claimed, triangles, and an unwritten list entry reads −1.
struct Scratch {
  unsigned long long* keys;
  unsigned int* big_count;
  unsigned int* big_claimed;
  int64_t* big_list;
};

__host__ __device__ Scratch SplitScratch(int64_t* scratch, int64_t pixels) {
  unsigned int* counters = reinterpret_cast<unsigned int*>(scratch + pixels);
  return {reinterpret_cast<unsigned long long*>(scratch), counters, counters + 1, scratch + pixels + 1};
}

// Tests the pixels of big triangle p = b·F + f, with the whole block.
template <typename I>
__device__ void WalkBigTriangle(const float* clip, int64_t num_vertices, const I* faces, int64_t num_faces,
                                int height, int width, const Scratch& s, int64_t p) {
  const int64_t b = p / num_faces, f = p % num_faces;
  Triangle t;
  int c0, c1, r0, r1;
  if (!LoadDrawableTriangle(clip, num_vertices, faces, b, f, t) || !PixelBox(t, height, width, c0, c1, r0, r1)) {
    return;
  }
  const PixelGrid grid = MakePixelGrid(width, height);
  const int64_t box_w = c1 - c0 + 1;
  const int64_t area = box_w * (r1 - r0 + 1);
  unsigned long long* image = s.keys + b * height * width;
  for (int64_t k = threadIdx.x; k < area; k += blockDim.x) {
    const int r = r0 + static_cast<int>(k / box_w), c = c0 + static_cast<int>(k % box_w);
    TestPixel(t, static_cast<uint32_t>(f), ColumnNdc(c, grid), RowNdc(r, grid),
              image + static_cast<int64_t>(r) * width + c);
  }
}

// Thread 0 claims the next listed big triangle; −1 when every listed one is claimed. An index is
// taken only while it is below the list's length (compare-and-swap): an index claimed past the end
// could be filled by a later append that no block would then walk. Every block that appends claims
// after its appends, so every listed triangle is claimed by some block.
__device__ int64_t ClaimBigTriangle(const Scratch& s) {
  // Counters hold (count − 1): `next` is the number claimed so far, the index to claim.
  unsigned int next = atomicAdd(s.big_claimed, 0u) + 1u;
  for (;;) {
    const unsigned int listed = atomicAdd(s.big_count, 0u) + 1u;
    if (next >= listed) return -1;
    const unsigned int seen = atomicCAS(s.big_claimed, next - 1u, next);
    if (seen == next - 1u) break;
    next = seen + 1u;
  }
  // The appender bumps the length before it writes the entry: wait for the entry (its thread is
  // running, between those two instructions).
  unsigned long long* entry = reinterpret_cast<unsigned long long*>(s.big_list + next);
  int64_t p;
  while ((p = static_cast<int64_t>(atomicOr(entry, 0ull))) < 0) {
  }
  return p;
}

// A triangle of the warp-balanced walk: corners, pixel box and key image.
struct BoxedTriangle {
  Triangle t;
  int c0, r0, box_w;
  float inv_box_w;  // RN(1/box_w)
  uint32_t face;
  int64_t image;  // offset of its batch element's key image
};

// Bitwise OR of v over the warp (all lanes take part).
__device__ __forceinline__ unsigned WarpOr(unsigned v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  return __reduce_or_sync(0xffffffffu, v);
#else
  for (int d = 1; d < kWarp; d <<= 1) v |= __shfl_xor_sync(0xffffffffu, v, d);
  return v;
#endif
}

// Blocks of the small-triangle kernel resident per multiprocessor: caps its registers at 40, so that a
// 200k-triangle mesh's blocks all start at once on an H100.
constexpr int kSmallBlocksPerSm = 6;

// One thread per triangle loads it and sizes its pixel box; boxes over kRasterSmallBox pixels go to
// the big-triangle list. The warp then walks the pixels of its 32 boxes together, lane k taking pixels
// k, k+32, ... of the concatenated boxes, so a warp takes ⌈Σ areas / 32⌉ steps rather than the
// largest area's (triangle sizes vary a lot, and a thread per triangle left most lanes idle).
// The nonempty boxes are stored compacted, in lane order, so that in each step of 32 pixels the
// owner of a pixel is counted rather than searched for: the boxes that started before the step,
// plus those starting within it at or before the pixel (one ballot and one OR over the warp, instead
// of a binary search of five dependent shared-memory reads per pixel).
// With kWalkBig, each block then claims and walks listed big triangles until none is left (saving the
// big-triangle kernel's launch; the launcher picks this when the grid has blocks enough to share them).
template <typename I, bool kWalkBig>
__global__ void __launch_bounds__(kThreads, kSmallBlocksPerSm)
    RasterSmallKernel(const float* clip, int64_t batch, int64_t num_vertices, const I* faces, int64_t num_faces,
                      int height, int width, Scratch s) {
  __shared__ BoxedTriangle tris[kThreads];
  __shared__ int starts[kThreads];  // exclusive prefix sums of the box areas, by compacted index
  const int lane = static_cast<int>(threadIdx.x) % kWarp, warp0 = static_cast<int>(threadIdx.x) - lane;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int area = 0;
  BoxedTriangle mine;
  // No early return: every lane takes part in the warp collectives below.
  if (p < batch * num_faces) {
    const int64_t b = p / num_faces, f = p % num_faces;
    int c1, r1;
    if (LoadDrawableTriangle(clip, num_vertices, faces, b, f, mine.t) &&
        PixelBox(mine.t, height, width, mine.c0, c1, mine.r0, r1)) {
      const int64_t box = static_cast<int64_t>(c1 - mine.c0 + 1) * (r1 - mine.r0 + 1);
      if (box > kRasterSmallBox) {
        s.big_list[atomicAdd(s.big_count, 1u) + 1u] = p;  // the counter starts at 0xffffffff
      } else {
        area = static_cast<int>(box);
        mine.box_w = c1 - mine.c0 + 1;
        mine.inv_box_w = __frcp_rn(static_cast<float>(mine.box_w));
        mine.face = static_cast<uint32_t>(f);
        mine.image = b * height * width;
      }
    }
  }
  int end = area;  // inclusive prefix sum over the warp
  for (int d = 1; d < kWarp; d <<= 1) {
    const int v = __shfl_up_sync(0xffffffffu, end, d);
    if (lane >= d) end += v;
  }
  const int total = __shfl_sync(0xffffffffu, end, kWarp - 1);
  const int start = end - area;
  const unsigned nonempty = __ballot_sync(0xffffffffu, area > 0);
  if (area > 0) {
    const int slot = warp0 + __popc(nonempty & ((1u << lane) - 1u));  // compacted, in lane order
    tris[slot] = mine;
    starts[slot] = start;
  }
  __syncwarp();
  const PixelGrid grid = MakePixelGrid(width, height);
  // Bits 0..lane: the pixels of a step up to this lane's.
  const unsigned upto_lane = 0xffffffffu >> (kWarp - 1 - lane);
  for (int step = 0; step < total; step += kWarp) {  // warp-uniform: the collectives need every lane
    const bool starts_in_step = area > 0 && start >= step && start < step + kWarp;
    const unsigned step_starts = WarpOr(starts_in_step ? 1u << (start - step) : 0u);
    const int started_before = __popc(__ballot_sync(0xffffffffu, area > 0 && start < step));
    const int k = step + lane;
    if (k >= total) continue;
    const int owner = warp0 + started_before + __popc(step_starts & upto_lane) - 1;
    const BoxedTriangle& o = tris[owner];
    // local / box_w from the reciprocal (local < kRasterSmallBox: the estimate is off by at most one).
    const int local = k - starts[owner];
    int dr = static_cast<int>(__fmul_rn(static_cast<float>(local), o.inv_box_w));
    if (dr * o.box_w > local) {
      --dr;
    } else if ((dr + 1) * o.box_w <= local) {
      ++dr;
    }
    const int r = o.r0 + dr, c = o.c0 + (local - dr * o.box_w);
    TestPixel(o.t, o.face, ColumnNdc(c, grid), RowNdc(r, grid), s.keys + o.image + static_cast<int64_t>(r) * width + c);
  }
  if constexpr (kWalkBig) {
    __shared__ int64_t claimed;
    for (;;) {
      __syncthreads();  // this block's appends are done; the previous triangle's `claimed` is read
      if (threadIdx.x == 0) claimed = ClaimBigTriangle(s);
      __syncthreads();
      if (claimed < 0) break;
      WalkBigTriangle(clip, num_vertices, faces, num_faces, height, width, s, claimed);
    }
  }
}

// One block per large triangle (grid-stride over the list), its threads striding over the pixel box.
template <typename I>
__global__ void RasterBigKernel(const float* clip, int64_t num_vertices, const I* faces, int64_t num_faces, int height,
                                int width, Scratch s) {
  const unsigned int count = *s.big_count + 1u;
  for (unsigned int i = blockIdx.x; i < count; i += gridDim.x) {
    WalkBigTriangle(clip, num_vertices, faces, num_faces, height, width, s, s.big_list[i]);
  }
}

__device__ __forceinline__ int64_t KeyToId(unsigned long long k) {
  return k == kEmptyKey ? -1 : static_cast<int64_t>(k & 0xffffffffull);
}

__global__ void ResolveKernel(const unsigned long long* keys, int64_t n, int64_t* tri_id) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) tri_id[i] = KeyToId(keys[i]);
}

// ---- Fragment pass ----

// A pixel's triangle: batch element, pixel centre, vertex ids and clip corners. False when empty.
struct PixelTriangle {
  int64_t b;
  float fx, fy;
  int64_t v[3];
  Triangle t;
};

template <typename I>
__device__ __forceinline__ bool LoadPixelTriangle(const FragmentInputs& in, const I* faces, int64_t i, int64_t tri,
                                                  PixelTriangle& p) {
  const int64_t hw = in.height * in.width;
  p.b = i / hw;
  const int64_t pix = i - p.b * hw;
  const int r = static_cast<int>(pix / in.width), c = static_cast<int>(pix - r * in.width);
  const PixelGrid grid = MakePixelGrid(static_cast<int>(in.width), static_cast<int>(in.height));
  p.fx = ColumnNdc(c, grid);
  p.fy = RowNdc(r, grid);
  if (tri < 0 || tri >= in.faces.count || !FaceCorners(faces, tri, in.num_vertices, p.v)) return false;
  LoadCorners(in.clip, in.num_vertices, p.b, p.v, p.t);
  return true;
}

// Row of vertex v's attributes for batch element b.
__device__ __forceinline__ int64_t AttrRow(const FragmentInputs& in, int64_t b, int64_t v) {
  return ((in.attr_batch == 1 ? 0 : b) * in.num_vertices + v) * in.channels;
}

template <typename I, bool kFromKeys>
__global__ void FragmentsForwardKernel(FragmentInputs in, const I* faces, PixelTriangles tri, float* bary, float* depth,
                                       float* mask, float* out_attr) {
  const int64_t n = in.batch * in.height * in.width;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t id;
  if constexpr (kFromKeys) {
    id = KeyToId(static_cast<unsigned long long>(tri.keys[i]));
    tri.tri_id_out[i] = id;
  } else {
    id = tri.tri_id[i];
  }
  PixelTriangle p;
  const bool covered = LoadPixelTriangle(in, faces, i, id, p);
  float bb[3] = {0.f, 0.f, 0.f}, d = 1.f;
  if (covered) {
    const Areas a = PixelAreas(p.t, p.fx, p.fy);
    if (a.sum != 0.f) {
#pragma unroll
      for (int k = 0; k < 3; ++k) bb[k] = __fdiv_rn(a.a[k], a.sum);
      const float num = bb[0] * p.t.z[0] + bb[1] * p.t.z[1] + bb[2] * p.t.z[2];
      const float den = bb[0] * p.t.w[0] + bb[1] * p.t.w[1] + bb[2] * p.t.w[2];
      if (den != 0.f) d = num / den;
    }
  }
#pragma unroll
  for (int k = 0; k < 3; ++k) bary[3 * i + k] = bb[k];
  depth[i] = d;
  mask[i] = covered ? 1.f : 0.f;
  if (in.channels == 0) return;
  float* out = out_attr + i * in.channels;
  if (!covered) {
    for (int64_t c = 0; c < in.channels; ++c) out[c] = 0.f;
    return;
  }
  const float* a0 = in.attr + AttrRow(in, p.b, p.v[0]);
  const float* a1 = in.attr + AttrRow(in, p.b, p.v[1]);
  const float* a2 = in.attr + AttrRow(in, p.b, p.v[2]);
  for (int64_t c = 0; c < in.channels; ++c) out[c] = bb[0] * a0[c] + bb[1] * a1[c] + bb[2] * a2[c];
}

// row[0..4) += g atomically (one 16-byte atomic on Hopper; the launcher's contract keeps rows 16-byte
// aligned).
__device__ __forceinline__ void AtomicAdd4(float* row, float g0, float g1, float g2, float g3) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float4*>(row), make_float4(g0, g1, g2, g3));
#else
  atomicAdd(row, g0);
  atomicAdd(row + 1, g1);
  atomicAdd(row + 2, g2);
  atomicAdd(row + 3, g3);
#endif
}

// Chain rule of the forward, per pixel: bᵢ = aᵢ/Σa, depth = Σbz/Σbw, out = Σbᵢ·attrᵢ (rasterizer.h).
template <typename I>
__global__ void FragmentsBackwardKernel(FragmentInputs in, const I* faces, const int64_t* tri_id,
                                        const float* grad_bary, const float* grad_depth, const float* grad_out,
                                        float* grad_clip, float* grad_attr, int64_t grad_attr_stride) {
  const int64_t n = in.batch * in.height * in.width;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  PixelTriangle p;
  if (!LoadPixelTriangle(in, faces, i, tri_id[i], p)) return;
  const Triangle& t = p.t;
  const Areas a = PixelAreas(t, p.fx, p.fy);
  if (a.sum == 0.f) return;  // barycentrics 0, no gradient (as the twin's where)
  float bb[3], gb[3] = {0.f, 0.f, 0.f}, gz[3] = {0.f, 0.f, 0.f}, gw[3] = {0.f, 0.f, 0.f};
#pragma unroll
  for (int k = 0; k < 3; ++k) bb[k] = __fdiv_rn(a.a[k], a.sum);
  if (grad_bary != nullptr) {
#pragma unroll
    for (int k = 0; k < 3; ++k) gb[k] = grad_bary[3 * i + k];
  }
  if (grad_depth != nullptr) {
    const float num = bb[0] * t.z[0] + bb[1] * t.z[1] + bb[2] * t.z[2];
    const float den = bb[0] * t.w[0] + bb[1] * t.w[1] + bb[2] * t.w[2];
    if (den != 0.f) {
      const float g_num = grad_depth[i] / den, g_den = -g_num * (num / den);
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        gb[k] += g_num * t.z[k] + g_den * t.w[k];
        gz[k] = g_num * bb[k];
        gw[k] = g_den * bb[k];
      }
    }
  }
  if (in.channels > 0 && grad_out != nullptr) {
    const int64_t rows[3] = {AttrRow(in, p.b, p.v[0]), AttrRow(in, p.b, p.v[1]), AttrRow(in, p.b, p.v[2])};
    const float* go = grad_out + i * in.channels;
    // Channels in groups of 4: one 16-byte atomic per corner and group into the padded gradient rows.
    for (int64_t c0 = 0; c0 < in.channels; c0 += 4) {
      float g[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int64_t c = c0 + q;
        g[q] = c < in.channels ? go[c] : 0.f;
#pragma unroll
        for (int k = 0; k < 3; ++k) {
          if (c < in.channels) gb[k] += g[q] * in.attr[rows[k] + c];
        }
      }
      if (grad_attr == nullptr) continue;
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        const int64_t row = ((in.attr_batch == 1 ? 0 : p.b) * in.num_vertices + p.v[k]) * grad_attr_stride;
        AtomicAdd4(grad_attr + row + c0, g[0] * bb[k], g[1] * bb[k], g[2] * bb[k], g[3] * bb[k]);
      }
    }
  }
  if (grad_clip == nullptr) return;
  // d bᵢ/d aⱼ = (δᵢⱼ − bᵢ)/Σa, so g_aⱼ = (g_bⱼ − Σᵢ g_bᵢ·bᵢ)/Σa.
  const float dot = gb[0] * bb[0] + gb[1] * bb[1] + gb[2] * bb[2];
  float ga[3];
#pragma unroll
  for (int k = 0; k < 3; ++k) ga[k] = (gb[k] - dot) / a.sum;
  // aₖ = qxₖ₊₁·qyₖ₊₂ − qyₖ₊₁·qxₖ₊₂; qₖ = (xₖ − fx·wₖ, yₖ − fy·wₖ).
#pragma unroll
  for (int j = 0; j < 3; ++j) {
    const int jn = (j + 1) % 3, jp = (j + 2) % 3;
    const float g_qx = ga[jp] * a.qy[jn] - ga[jn] * a.qy[jp];
    const float g_qy = ga[jn] * a.qx[jp] - ga[jp] * a.qx[jn];
    AtomicAdd4(grad_clip + (p.b * in.num_vertices + p.v[j]) * 4, g_qx, g_qy, gz[j],
               gw[j] - p.fx * g_qx - p.fy * g_qy);
  }
}

int64_t Blocks(int64_t n) { return (n + kThreads - 1) / kThreads; }

// Blocks of the big-triangle kernel: two per multiprocessor (they grid-stride over the list, which is
// usually short, so more would mostly start and exit).
int BigBlocks() {
  static const int blocks = [] {
    int device = 0, sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) {
      cudaGetLastError();  // clear, and fall back to an H100's count
      sms = 132;
    }
    return 2 * sms;
  }();
  return blocks;
}

const char* LastError() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Whether the small-triangle kernel walks the big-triangle list itself: when its grid has at least as
// many blocks as the big-triangle kernel would, to share the list among (one kernel launch fewer).
bool SmallKernelWalksBig(int64_t prims) { return Blocks(prims) >= BigBlocks(); }

template <typename I>
void LaunchRasterKeys(const float* clip, int64_t batch, int64_t num_vertices, const I* faces, int64_t num_faces,
                      int h, int w, Scratch s, bool walks_big, cudaStream_t stream) {
  const int64_t prims = batch * num_faces;
  if (walks_big) {
    RasterSmallKernel<I, true>
        <<<Blocks(prims), kThreads, 0, stream>>>(clip, batch, num_vertices, faces, num_faces, h, w, s);
    return;
  }
  RasterSmallKernel<I, false>
      <<<Blocks(prims), kThreads, 0, stream>>>(clip, batch, num_vertices, faces, num_faces, h, w, s);
  const int64_t big_blocks = prims < BigBlocks() ? prims : BigBlocks();
  RasterBigKernel<I><<<big_blocks, kThreads, 0, stream>>>(clip, num_vertices, faces, num_faces, h, w, s);
}

template <typename I>
void LaunchForward(const FragmentInputs& in, PixelTriangles tri, float* bary, float* depth, float* mask,
                   float* out_attr, int64_t pixels, cudaStream_t stream) {
  const I* faces = static_cast<const I*>(in.faces.data);
  if (tri.tri_id == nullptr) {
    FragmentsForwardKernel<I, true><<<Blocks(pixels), kThreads, 0, stream>>>(in, faces, tri, bary, depth, mask,
                                                                              out_attr);
  } else {
    FragmentsForwardKernel<I, false><<<Blocks(pixels), kThreads, 0, stream>>>(in, faces, tri, bary, depth, mask,
                                                                               out_attr);
  }
}

}  // namespace

const char* RasterizeKeysCuda(const float* clip, int64_t batch, int64_t num_vertices, FaceIndices faces,
                              int64_t height, int64_t width, int64_t* scratch, cudaStream_t stream) {
  const int64_t pixels = batch * height * width;
  if (pixels == 0) return nullptr;
  // Keys to ~0 (empty) and the big-triangle counters to 0xffffffff (see Scratch) in one memset, and the
  // list's entries to −1 when the small kernel claims them (it waits for each entry to be written).
  const int64_t prims = batch * faces.count;
  const bool walks_big = prims > 0 && SmallKernelWalksBig(prims);
  const int64_t words = walks_big ? pixels + 1 + prims : pixels + 1;
  const cudaError_t err = cudaMemsetAsync(scratch, 0xff, words * sizeof(int64_t), stream);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  if (prims > 0) {
    const Scratch s = SplitScratch(scratch, pixels);
    const int h = static_cast<int>(height), w = static_cast<int>(width);
    const int64_t v = num_vertices, f = faces.count;
    if (faces.is_int64) {
      LaunchRasterKeys(clip, batch, v, static_cast<const int64_t*>(faces.data), f, h, w, s, walks_big, stream);
    } else {
      LaunchRasterKeys(clip, batch, v, static_cast<const int32_t*>(faces.data), f, h, w, s, walks_big, stream);
    }
  }
  return LastError();
}

const char* ResolveTriangleIdsCuda(const int64_t* scratch, int64_t pixels, int64_t* tri_id, cudaStream_t stream) {
  if (pixels == 0) return nullptr;
  ResolveKernel<<<Blocks(pixels), kThreads, 0, stream>>>(reinterpret_cast<const unsigned long long*>(scratch), pixels,
                                                         tri_id);
  return LastError();
}

const char* FragmentsForwardCuda(const FragmentInputs& in, PixelTriangles tri, float* bary, float* depth, float* mask,
                                 float* out_attr, cudaStream_t stream) {
  const int64_t pixels = in.batch * in.height * in.width;
  if (pixels == 0) return nullptr;
  if (in.faces.is_int64) {
    LaunchForward<int64_t>(in, tri, bary, depth, mask, out_attr, pixels, stream);
  } else {
    LaunchForward<int32_t>(in, tri, bary, depth, mask, out_attr, pixels, stream);
  }
  return LastError();
}

const char* FragmentsBackwardCuda(const FragmentInputs& in, const int64_t* tri_id, const float* grad_bary,
                                  const float* grad_depth, const float* grad_out_attr, float* grad_clip,
                                  float* grad_attr, int64_t grad_attr_stride, cudaStream_t stream) {
  const int64_t pixels = in.batch * in.height * in.width;
  if (pixels == 0 || (grad_clip == nullptr && grad_attr == nullptr)) return nullptr;
  if (in.faces.is_int64) {
    FragmentsBackwardKernel<int64_t><<<Blocks(pixels), kThreads, 0, stream>>>(
        in, static_cast<const int64_t*>(in.faces.data), tri_id, grad_bary, grad_depth, grad_out_attr, grad_clip,
        grad_attr, grad_attr_stride);
  } else {
    FragmentsBackwardKernel<int32_t><<<Blocks(pixels), kThreads, 0, stream>>>(
        in, static_cast<const int32_t*>(in.faces.data), tri_id, grad_bary, grad_depth, grad_out_attr, grad_clip,
        grad_attr, grad_attr_stride);
  }
  return LastError();
}

}  // namespace psd3d
