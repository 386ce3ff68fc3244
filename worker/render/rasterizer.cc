#include "worker/render/rasterizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "worker/render/rasterizer_cuda.h"
#include "worker/torch_compat.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace psd3d {
namespace {

constexpr int64_t kEmptyKey = std::numeric_limits<int64_t>::max();

void CheckRasterInputs(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width,
                       bool check_indices = true) {
  TORCH_CHECK(clip.dim() == 3 && clip.size(2) == 4, "rasterize: clip must be [B,V,4], got ", clip.sizes());
  TORCH_CHECK(clip.is_floating_point(), "rasterize: clip must be floating point");
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3, "rasterize: faces must be [F,3], got ", faces.sizes());
  TORCH_CHECK(faces.scalar_type() == at::kLong || faces.scalar_type() == at::kInt,
              "rasterize: faces must be int64/int32");
  TORCH_CHECK(faces.device() == clip.device(), "rasterize: clip and faces must be on one device");
  TORCH_CHECK(height > 0 && width > 0 && height < (1 << 30) && width < (1 << 30), "rasterize: bad size ", height, "x",
              width);
  TORCH_CHECK(faces.size(0) < std::numeric_limits<int32_t>::max(), "rasterize: too many faces");
  if (check_indices && faces.numel() > 0) {
    auto [lo, hi] = at::aminmax(faces);
    TORCH_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < clip.size(1), "rasterize: face indices out of [0,",
                clip.size(1), ")");
  }
}

// Optional attributes [B,V,C] or [1,V,C] for clip [B,V,4].
void CheckAttributes(const at::Tensor& clip, const at::Tensor& attr) {
  if (!attr.defined()) return;
  TORCH_CHECK(attr.dim() == 3 && (attr.size(0) == 1 || attr.size(0) == clip.size(0)) && attr.size(1) == clip.size(1),
              "fragments: attr must be [B,V,C] or [1,V,C] with clip's V, got ", attr.sizes());
  TORCH_CHECK(attr.is_floating_point() && attr.device() == clip.device(),
              "fragments: attr must be floating point on clip's device");
}

void CheckFragmentInputs(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& tri_id,
                         const at::Tensor& attr) {
  TORCH_CHECK(clip.dim() == 3 && clip.size(2) == 4, "fragments: clip must be [B,V,4], got ", clip.sizes());
  TORCH_CHECK(clip.scalar_type() == at::kFloat || clip.scalar_type() == at::kDouble, "fragments: float32/float64 clip");
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3, "fragments: faces must be [F,3], got ", faces.sizes());
  TORCH_CHECK(faces.scalar_type() == at::kLong || faces.scalar_type() == at::kInt,
              "fragments: faces must be int64/int32");
  TORCH_CHECK(tri_id.dim() == 3 && tri_id.size(0) == clip.size(0), "fragments: tri_id must be [B,H,W], got ",
              tri_id.sizes());
  TORCH_CHECK(!tri_id.is_floating_point() && !tri_id.is_complex(), "fragments: tri_id must be integer");
  TORCH_CHECK(faces.device() == clip.device() && tri_id.device() == clip.device(),
              "fragments: clip, faces and tri_id must be on one device");
  CheckAttributes(clip, attr);
}

// The fused fragment kernel takes CUDA float32 clip and attributes (float64 runs the twin).
[[maybe_unused]] bool UseFragmentKernel(const at::Tensor& clip, const at::Tensor& attr) {
  return clip.is_cuda() && clip.scalar_type() == at::kFloat && (!attr.defined() || attr.scalar_type() == at::kFloat);
}

// Faces [F,3] int64 for indexing.
at::Tensor LongFaces(const at::Tensor& faces) { return faces.to(at::kLong); }

// Vertex ids of each pixel's triangle corners, [B,H·W·3]; with `per_batch`, offset by b·V to index a
// [B·V,...] table. Empty pixels use face 0 (their values are masked out by the callers).
at::Tensor PixelVertexRows(const at::Tensor& faces, const at::Tensor& tri_id, int64_t num_vertices, bool per_batch) {
  const int64_t b = tri_id.size(0);
  at::Tensor vid = LongFaces(faces).index_select(0, tri_id.clamp_min(0).reshape(-1)).view({b, -1});
  if (per_batch) vid = vid + (at::arange(b, vid.options()) * num_vertices).view({b, 1});
  return vid;
}

// Gathers per-pixel corner rows of `table` [B,V,K] (or [1,V,K] shared): → [B,H,W,3,K].
at::Tensor GatherCorners(const at::Tensor& table, const at::Tensor& faces, const at::Tensor& tri_id) {
  const int64_t b = tri_id.size(0), h = tri_id.size(1), w = tri_id.size(2);
  const int64_t v = table.size(1), k = table.size(2);
  const bool per_batch = table.size(0) != 1;
  at::Tensor rows = PixelVertexRows(faces, tri_id, v, per_batch).reshape(-1);
  return table.reshape({table.size(0) * v, k}).index_select(0, rows).view({b, h, w, 3, k});
}

// Cyclic successors along a size-3 dim: column k of the result holds column (k+shift) % 3.
at::Tensor Cycle(const at::Tensor& t, int64_t dim, int shift) { return at::roll(t, -shift, dim); }

// ---- The twin's triangle-id pass ----

// Per-primitive (b,f) data of the triangles that can cover a pixel: clip coordinates [P,3] each and
// the pixel box.
struct Primitives {
  at::Tensor index;          // [P] b·F + f
  at::Tensor x, y, z, w;     // [P,3]
  at::Tensor c0, r0, box_w;  // [P] box origin and width
  at::Tensor count;          // [P] pixels in the box (> 0)
};

Primitives CollectPrimitives(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width) {
  const int64_t b = clip.size(0), f = faces.size(0);
  at::Tensor tri = clip.index_select(1, faces.reshape(-1)).view({b * f, 3, 4});
  at::Tensor x = tri.select(2, 0), y = tri.select(2, 1), z = tri.select(2, 2), w = tri.select(2, 3);
  at::Tensor valid = (w > 0).all(1).logical_and(at::isfinite(tri).view({b * f, 12}).all(1));
  at::Tensor safe_w = at::where(valid.unsqueeze(1), w, at::ones_like(w));
  at::Tensor nx = at::where(valid.unsqueeze(1), x / safe_w, at::zeros_like(x));
  at::Tensor ny = at::where(valid.unsqueeze(1), y / safe_w, at::zeros_like(y));
  // Same box as the kernel's PixelBox (any superset of the covered pixels would do).
  const double fw = static_cast<double>(width), fh = static_cast<double>(height);
  auto lo = [](const at::Tensor& v, double hi) {
    return at::floor(v.clamp(-2.0, hi + 1.0)).to(at::kLong).clamp_min(0);
  };
  auto up = [](const at::Tensor& v, double hi) {
    return at::ceil(v.clamp(-2.0, hi + 1.0)).to(at::kLong).clamp_max(static_cast<int64_t>(hi) - 1);
  };
  at::Tensor c0 = lo((nx.amin(1) + 1.0) * (0.5 * fw) - 0.5, fw);
  at::Tensor c1 = up((nx.amax(1) + 1.0) * (0.5 * fw) - 0.5, fw);
  at::Tensor r0 = lo((1.0 - ny.amax(1)) * (0.5 * fh) - 0.5, fh);
  at::Tensor r1 = up((1.0 - ny.amin(1)) * (0.5 * fh) - 0.5, fh);
  at::Tensor nonempty = valid.logical_and(c0 <= c1).logical_and(r0 <= r1);
  at::Tensor count = at::where(nonempty, (c1 - c0 + 1) * (r1 - r0 + 1), at::zeros_like(c0));

  Primitives p;
  p.index = at::nonzero(count > 0).squeeze(1);
  auto take = [&](const at::Tensor& t) { return t.index_select(0, p.index).contiguous(); };
  p.x = take(x);
  p.y = take(y);
  p.z = take(z);
  p.w = take(w);
  p.c0 = take(c0);
  p.r0 = take(r0);
  p.box_w = take(c1 - c0 + 1);
  p.count = take(count);
  return p;
}

// Tests the (primitive, pixel) pairs of primitives [begin, end) and scatter-mins their keys.
void RasterizeChunk(const Primitives& p, int64_t begin, int64_t end, int64_t pairs, int64_t num_faces, int64_t height,
                    int64_t width, const at::Tensor& col_ndc, const at::Tensor& row_ndc, at::Tensor& keys) {
  auto slice = [&](const at::Tensor& t) { return t.narrow(0, begin, end - begin); };
  at::Tensor count = slice(p.count);
  at::Tensor local = at::repeat_interleave(count, TorchOptional<int64_t>(pairs));  // pair → chunk-local primitive
  at::Tensor start = (count.cumsum(0) - count).index_select(0, local);
  at::Tensor k = at::arange(pairs, count.options()) - start;
  at::Tensor box_w = slice(p.box_w).index_select(0, local);
  at::Tensor px = slice(p.c0).index_select(0, local) + at::remainder(k, box_w);
  at::Tensor py = slice(p.r0).index_select(0, local) + at::div(k, box_w, "trunc");
  at::Tensor fx = col_ndc.index_select(0, px).unsqueeze(1), fy = row_ndc.index_select(0, py).unsqueeze(1);
  at::Tensor x = slice(p.x).index_select(0, local), y = slice(p.y).index_select(0, local);
  at::Tensor z = slice(p.z).index_select(0, local), w = slice(p.w).index_select(0, local);

  // Exactly the kernel's operations (TestPixel in rasterizer.cu), one IEEE op per tensor op.
  at::Tensor qx = x - fx * w, qy = y - fy * w;  // [n,3]
  auto col = [](const at::Tensor& t, int64_t i) { return t.select(1, i); };
  at::Tensor a0 = col(qx, 1) * col(qy, 2) - col(qy, 1) * col(qx, 2);
  at::Tensor a1 = col(qx, 2) * col(qy, 0) - col(qy, 2) * col(qx, 0);
  at::Tensor a2 = col(qx, 0) * col(qy, 1) - col(qy, 0) * col(qx, 1);
  at::Tensor sum = (a0 + a1) + a2;
  at::Tensor pos = (a0 >= 0).logical_and(a1 >= 0).logical_and(a2 >= 0).logical_and(sum > 0);
  at::Tensor neg = (a0 <= 0).logical_and(a1 <= 0).logical_and(a2 <= 0).logical_and(sum < 0);
  at::Tensor num = (a0 * col(z, 0) + a1 * col(z, 1)) + a2 * col(z, 2);
  at::Tensor den = (a0 * col(w, 0) + a1 * col(w, 1)) + a2 * col(w, 2);
  at::Tensor d = num / den;
  at::Tensor hit = at::nonzero(pos.logical_or(neg).logical_and(d >= -1).logical_and(d <= 1)).squeeze(1);
  if (hit.numel() == 0) return;

  at::Tensor prim = slice(p.index).index_select(0, local.index_select(0, hit));
  at::Tensor face = at::remainder(prim, num_faces);
  at::Tensor batch = at::div(prim, num_faces, "trunc");
  at::Tensor pixel = (batch * height + py.index_select(0, hit)) * width + px.index_select(0, hit);
  // Key = (order-preserving depth bits − 2³¹)·2³² + face: the kernel's unsigned key minus 2⁶³, so
  // signed int64 order here equals unsigned order there.
  at::Tensor bits = d.index_select(0, hit).contiguous().view(at::kInt).to(at::kLong);
  at::Tensor high = at::where(bits >= 0, bits, -(int64_t{1} << 31) - 1 - bits);
  at::Tensor key = high * (int64_t{1} << 32) + face;
  keys.scatter_reduce_(0, pixel, key, "amin", /*include_self=*/true);
}

#ifdef PSD3D_WITH_CUDA
void CheckCuda(const char* error, const char* what) { TORCH_CHECK(error == nullptr, "rasterize: ", what, ": ", error); }

// clip as the kernels read it: contiguous, and 16-byte aligned (they load each vertex as one float4;
// a contiguous view may start at any float of its storage, and is then copied).
at::Tensor KernelClip(const at::Tensor& clip) {
  at::Tensor c = clip.contiguous();
  return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
}

FaceIndices KernelFaces(const at::Tensor& faces) {
  return {faces.data_ptr(), faces.scalar_type() == at::kLong, faces.size(0)};
}

// The key buffer of the id pass (RasterScratchWords int64 words, keys first).
at::Tensor RasterizeKeys(const at::Tensor& clip_f32, const at::Tensor& faces, int64_t height, int64_t width) {
  const int64_t b = clip_f32.size(0);
  at::Tensor scratch =
      at::empty({RasterScratchWords(b * height * width, b * faces.size(0))}, clip_f32.options().dtype(at::kLong));
  CheckCuda(RasterizeKeysCuda(clip_f32.data_ptr<float>(), b, clip_f32.size(1), KernelFaces(faces), height, width,
                              scratch.data_ptr<int64_t>(), at::cuda::getCurrentCUDAStream()),
            "triangle-id kernel");
  return scratch;
}

at::Tensor RasterizeTriangleIdsKernel(const at::Tensor& clip_in, const at::Tensor& faces_in, int64_t height,
                                      int64_t width) {
  const c10::cuda::CUDAGuard guard(clip_in.device());
  at::Tensor clip = KernelClip(clip_in.to(at::kFloat));
  at::Tensor scratch = RasterizeKeys(clip, faces_in.contiguous(), height, width);  // int32/int64 as given
  at::Tensor tri_id = at::empty({clip.size(0), height, width}, clip.options().dtype(at::kLong));
  CheckCuda(ResolveTriangleIdsCuda(scratch.data_ptr<int64_t>(), tri_id.numel(), tri_id.data_ptr<int64_t>(),
                                   at::cuda::getCurrentCUDAStream()),
            "resolve kernel");
  return tri_id;
}

// Kernel view of the fragment inputs: clip [B,V,4] and attr [Ba,V,C] float32 contiguous (C may be 0),
// faces contiguous int32/int64.
FragmentInputs KernelInputs(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& attr, int64_t height,
                            int64_t width) {
  FragmentInputs in;
  in.clip = clip.data_ptr<float>();
  in.batch = clip.size(0);
  in.num_vertices = clip.size(1);
  in.height = height;
  in.width = width;
  in.faces = KernelFaces(faces);
  in.channels = attr.size(2);
  in.attr = in.channels > 0 ? attr.data_ptr<float>() : nullptr;
  in.attr_batch = attr.size(0);
  return in;
}

// Outputs of the fused forward, in the autograd Function's output order.
enum FragmentOutput { kTriId = 0, kBary, kDepth, kMask, kAttr };

// The fused forward. `src` is a triangle-id image [B,H,W] int64, or with `from_keys` the scratch of
// RasterizeKeys (the kernel then writes the ids; otherwise the kTriId output is an empty placeholder).
std::vector<at::Tensor> FragmentsForward(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& attr,
                                         const at::Tensor& src, bool from_keys, int64_t height, int64_t width) {
  const int64_t b = clip.size(0), c = attr.size(2);
  const auto fopts = clip.options();
  at::Tensor tri_id = at::empty({from_keys ? b : 0, height, width}, fopts.dtype(at::kLong));  // else a placeholder
  at::Tensor bary = at::empty({b, height, width, 3}, fopts), depth = at::empty({b, height, width, 1}, fopts);
  at::Tensor mask = at::empty({b, height, width, 1}, fopts), out = at::empty({b, height, width, c}, fopts);
  PixelTriangles tri;
  if (from_keys) {
    tri.keys = src.data_ptr<int64_t>();
    tri.tri_id_out = tri_id.data_ptr<int64_t>();
  } else {
    tri.tri_id = src.data_ptr<int64_t>();
  }
  CheckCuda(FragmentsForwardCuda(KernelInputs(clip, faces, attr, height, width), tri, bary.data_ptr<float>(),
                                 depth.data_ptr<float>(), mask.data_ptr<float>(),
                                 c > 0 ? out.data_ptr<float>() : nullptr, at::cuda::getCurrentCUDAStream()),
            "fragment kernel");
  return {tri_id, bary, depth, mask, out};
}

// Autograd wrapper of the fused kernel. Inputs: clip [B,V,4] float32, attr [Ba,V,C] float32 (C may be
// 0), faces, src (see FragmentsForward); gradients flow to clip and attr.
class FragmentsFunction : public torch::autograd::Function<FragmentsFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& clip_in,
                                                const at::Tensor& attr_in, const at::Tensor& faces,
                                                const at::Tensor& src, bool from_keys, int64_t height, int64_t width) {
    at::Tensor clip = KernelClip(clip_in), attr = attr_in.contiguous();
    std::vector<at::Tensor> out = FragmentsForward(clip, faces, attr, src, from_keys, height, width);
    ctx->save_for_backward({clip, attr, faces, from_keys ? out[kTriId] : src});  // the last is [B,H,W]
    ctx->mark_non_differentiable({out[kTriId], out[kMask]});
    ctx->set_materialize_grads(false);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& clip = saved[0];
    const at::Tensor& attr = saved[1];
    const c10::cuda::CUDAGuard guard(clip.device());
    const int64_t height = saved[3].size(1), width = saved[3].size(2);
    auto upstream = [&](int k) {
      if (!grads[k].defined()) return at::Tensor();
      return (grads[k].scalar_type() == at::kFloat ? grads[k] : grads[k].to(at::kFloat)).contiguous();
    };
    auto ptr = [](const at::Tensor& t) { return t.defined() && t.numel() > 0 ? t.data_ptr<float>() : nullptr; };
    const at::Tensor g_bary = upstream(kBary), g_depth = upstream(kDepth), g_attr = upstream(kAttr);
    // Attribute gradient rows padded to a multiple of 4 channels for the kernel's 16-byte atomics.
    const int64_t channels = attr.size(2), stride = (channels + 3) / 4 * 4;
    // Both gradients in one zero-filled buffer (one allocation, one fill): clip's first, then the
    // attributes' (at a multiple of 4 floats, so its rows stay 16-byte aligned).
    const int64_t clip_size = ctx->needs_input_grad(0) ? clip.numel() : 0;
    const int64_t attr_size = ctx->needs_input_grad(1) ? attr.size(0) * attr.size(1) * stride : 0;
    const at::Tensor buffer = at::zeros({clip_size + attr_size}, clip.options());
    at::Tensor grad_clip = clip_size > 0 ? buffer.narrow(0, 0, clip_size).view(clip.sizes()) : at::Tensor();
    at::Tensor grad_attr_padded = attr_size > 0
                                      ? buffer.narrow(0, clip_size, attr_size).view({attr.size(0), attr.size(1), stride})
                                      : at::Tensor();
    if (g_bary.defined() || g_depth.defined() || g_attr.defined()) {
      CheckCuda(FragmentsBackwardCuda(KernelInputs(clip, saved[2], attr, height, width), saved[3].data_ptr<int64_t>(),
                                      ptr(g_bary), ptr(g_depth), ptr(g_attr), ptr(grad_clip), ptr(grad_attr_padded),
                                      stride, at::cuda::getCurrentCUDAStream()),
                "fragment backward kernel");
    }
    at::Tensor grad_attr = grad_attr_padded.defined() && stride != channels ? grad_attr_padded.narrow(2, 0, channels)
                                                                            : grad_attr_padded;
    return {grad_clip, grad_attr, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// ComputeFragments / Rasterize through the fused kernel: without gradients a plain call, otherwise the
// autograd Function.
Fragments FusedFragments(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& attr_in,
                         const at::Tensor& src, bool from_keys, int64_t height, int64_t width) {
  const c10::cuda::CUDAGuard guard(clip.device());
  const at::Tensor attr = attr_in.defined() ? attr_in : at::empty({1, clip.size(1), 0}, clip.options());
  const bool grad = c10::GradMode::is_enabled() && (clip.requires_grad() || attr.requires_grad());
  std::vector<at::Tensor> out =
      grad ? FragmentsFunction::apply(clip, attr, faces, src, from_keys, height, width)
           : FragmentsForward(KernelClip(clip), faces, attr.contiguous(), src, from_keys, height, width);
  Fragments f;
  f.tri_id = from_keys ? out[kTriId] : src;
  f.bary = out[kBary];
  f.depth = out[kDepth];
  f.mask = out[kMask];
  if (attr_in.defined()) f.attr = out[kAttr];
  return f;
}
#endif

}  // namespace

at::Tensor PixelCentresNdc(int64_t n, bool flip, at::ScalarType dtype, const at::Device& device) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "PixelCentresNdc: float32 or float64");
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  // One IEEE op per step, as ColumnNdc/RowNdc in rasterizer.cu: exact odd integers, a true division
  // (by a tensor, never a scalar, which CUDA would turn into a multiplication by the reciprocal), and
  // a subtraction.
  at::Tensor q = (at::arange(n, opts) * 2 + 1) / at::full({n}, static_cast<double>(n), opts);
  return flip ? 1 - q : q - 1;
}

at::Tensor ToClipSpace(const at::Tensor& vertices, const at::Tensor& mvp) {
  TORCH_CHECK(vertices.dim() >= 2 && vertices.size(-1) == 3, "ToClipSpace: vertices must be [V,3] or [B,V,3]");
  TORCH_CHECK(mvp.dim() == 3 && mvp.size(1) == 4 && mvp.size(2) == 4, "ToClipSpace: mvp must be [B,4,4]");
  at::Tensor homo = at::cat({vertices, at::ones_like(vertices.narrow(-1, 0, 1))}, -1);
  if (homo.dim() == 2) homo = homo.unsqueeze(0);
  return at::matmul(homo, mvp.transpose(1, 2));
}

at::Tensor UvToClipSpace(const at::Tensor& uvs) {
  TORCH_CHECK(uvs.dim() == 2 && uvs.size(1) == 2, "UvToClipSpace: uvs must be [V,2]");
  at::Tensor u = uvs.select(1, 0), v = uvs.select(1, 1);
  return at::stack({u * 2 - 1, 1 - v * 2, at::zeros_like(u), at::ones_like(u)}, 1).unsqueeze(0);
}

at::Tensor RasterizeTriangleIdsTwin(const at::Tensor& clip_in, const at::Tensor& faces_in, int64_t height,
                                    int64_t width, int64_t max_pairs) {
  CheckRasterInputs(clip_in, faces_in, height, width);
  TORCH_CHECK(max_pairs > 0, "rasterize: max_pairs must be positive");
  c10::NoGradGuard no_grad;
  at::Tensor clip = clip_in.detach().to(at::kFloat).contiguous();
  at::Tensor faces = LongFaces(faces_in);
  const int64_t b = clip.size(0), f = faces.size(0);
  at::Tensor keys = at::full({b * height * width}, kEmptyKey, clip.options().dtype(at::kLong));
  if (f > 0) {
    Primitives p = CollectPrimitives(clip, faces, height, width);
    const at::Tensor col_ndc = PixelCentresNdc(width, false, at::kFloat, clip.device());
    const at::Tensor row_ndc = PixelCentresNdc(height, true, at::kFloat, clip.device());
    // Chunks of whole primitives with at most max_pairs pairs (or one primitive that has more).
    at::Tensor cum = p.count.cumsum(0).cpu();
    const int64_t* c = cum.data_ptr<int64_t>();
    const int64_t n = cum.numel();
    for (int64_t begin = 0; begin < n;) {
      const int64_t base = begin == 0 ? 0 : c[begin - 1];
      int64_t end = std::upper_bound(c + begin, c + n, base + max_pairs) - c;
      end = std::max(end, begin + 1);
      RasterizeChunk(p, begin, end, c[end - 1] - base, f, height, width, col_ndc, row_ndc, keys);
      begin = end;
    }
  }
  at::Tensor ids = at::where(keys == kEmptyKey, at::full_like(keys, -1), at::bitwise_and(keys, int64_t{0xffffffff}));
  return ids.view({b, height, width});
}

at::Tensor RasterizeTriangleIds(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width) {
#ifdef PSD3D_WITH_CUDA
  if (clip.is_cuda()) {
    CheckRasterInputs(clip, faces, height, width, /*check_indices=*/false);  // no sync; the kernel skips bad faces
    return RasterizeTriangleIdsKernel(clip, faces, height, width);
  }
#endif
  return RasterizeTriangleIdsTwin(clip, faces, height, width);
}

Fragments ComputeFragmentsTwin(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& tri_id,
                               const at::Tensor& attr) {
  CheckFragmentInputs(clip, faces, tri_id, attr);
  const int64_t h = tri_id.size(1), w = tri_id.size(2);
  at::Tensor covered = (tri_id >= 0).unsqueeze(-1);  // [B,H,W,1]
  // Empty pixels gather face 0; zero their corners so that a non-finite vertex there cannot turn the
  // (masked) zero gradients into NaN (0·NaN) on that face's vertices.
  at::Tensor corners = GatherCorners(clip, faces, tri_id);  // [B,H,W,3,4]
  corners = at::where(covered.unsqueeze(-1), corners, at::zeros_like(corners));
  at::Tensor cx = corners.select(-1, 0), cy = corners.select(-1, 1);
  at::Tensor cz = corners.select(-1, 2), cw = corners.select(-1, 3);  // [B,H,W,3]
  at::Tensor fx = PixelCentresNdc(w, false, clip.scalar_type(), clip.device()).view({1, 1, w, 1});
  at::Tensor fy = PixelCentresNdc(h, true, clip.scalar_type(), clip.device()).view({1, h, 1, 1});
  at::Tensor qx = cx - fx * cw, qy = cy - fy * cw;
  // a_k = cross(q_{k+1}, q_{k+2}).
  at::Tensor a = Cycle(qx, -1, 1) * Cycle(qy, -1, 2) - Cycle(qy, -1, 1) * Cycle(qx, -1, 2);
  at::Tensor sum = a.sum(-1, /*keepdim=*/true);
  at::Tensor ok = covered.logical_and(sum != 0);
  Fragments out;
  out.tri_id = tri_id;
  out.bary = at::where(ok, a / at::where(ok, sum, at::ones_like(sum)), at::zeros_like(a));
  at::Tensor num = (out.bary * cz).sum(-1, true), den = (out.bary * cw).sum(-1, true);
  at::Tensor ok_den = ok.logical_and(den != 0);
  out.depth = at::where(ok_den, num / at::where(ok_den, den, at::ones_like(den)), at::ones_like(den));
  out.mask = covered.to(clip.scalar_type());
  if (attr.defined()) out.attr = Interpolate(attr, tri_id, out.bary, faces);
  return out;
}

Fragments ComputeFragments(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& tri_id,
                           const at::Tensor& attr) {
#ifdef PSD3D_WITH_CUDA
  if (UseFragmentKernel(clip, attr)) {
    CheckFragmentInputs(clip, faces, tri_id, attr);
    return FusedFragments(clip, faces.contiguous(), attr, tri_id.to(at::kLong).contiguous(), /*from_keys=*/false,
                          tri_id.size(1), tri_id.size(2));
  }
#endif
  return ComputeFragmentsTwin(clip, faces, tri_id, attr);
}

Fragments Rasterize(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width,
                    const at::Tensor& attr) {
#ifdef PSD3D_WITH_CUDA
  if (UseFragmentKernel(clip, attr)) {
    CheckRasterInputs(clip, faces, height, width, /*check_indices=*/false);  // no sync; the kernels skip bad faces
    CheckAttributes(clip, attr);
    const c10::cuda::CUDAGuard guard(clip.device());
    at::Tensor faces_c = faces.contiguous();
    at::Tensor scratch = RasterizeKeys(KernelClip(clip), faces_c, height, width);  // reads the values only
    return FusedFragments(clip, faces_c, attr, scratch, /*from_keys=*/true, height, width);
  }
#endif
  at::Tensor ids = RasterizeTriangleIds(clip.detach(), faces, height, width);
  return ComputeFragments(clip, faces, ids, attr);
}

Fragments RasterizeTwin(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width,
                        const at::Tensor& attr) {
  return ComputeFragmentsTwin(clip, faces, RasterizeTriangleIdsTwin(clip.detach(), faces, height, width), attr);
}

at::Tensor Interpolate(const at::Tensor& attr, const at::Tensor& tri_id, const at::Tensor& bary,
                       const at::Tensor& faces) {
  TORCH_CHECK(attr.dim() == 3, "interpolate: attr must be [B,V,C] or [1,V,C], got ", attr.sizes());
  TORCH_CHECK(tri_id.dim() == 3, "interpolate: tri_id must be [B,H,W]");
  TORCH_CHECK(attr.size(0) == 1 || attr.size(0) == tri_id.size(0), "interpolate: attr batch must be 1 or B");
  TORCH_CHECK(bary.dim() == 4 && bary.size(3) == 3 && bary.size(0) == tri_id.size(0) &&
                  bary.size(1) == tri_id.size(1) && bary.size(2) == tri_id.size(2),
              "interpolate: bary must be [B,H,W,3]");
  at::Tensor corners = GatherCorners(attr, faces, tri_id);  // [B,H,W,3,C]
  at::Tensor out = (corners * bary.unsqueeze(-1)).sum(-2);  // [B,H,W,C]
  return at::where((tri_id >= 0).unsqueeze(-1), out, at::zeros_like(out));
}

namespace {

// Per-pixel inputs of the antialias pass.
struct AaPixels {
  at::Tensor tri, covered, depth;  // [B,H,W] (depth +inf where empty, no gradient)
  at::Tensor screen;               // [B,H,W,3,2] NDC corners of the pixel's triangle (differentiable)
  at::Tensor vid;                  // [B,H,W,3] vertex ids of the pixel's triangle
  at::Tensor centre;               // [B,H,W,2] NDC pixel centre
  at::Tensor color;                // [B,H,W,C]
};

struct PairDeltas {
  at::Tensor first, second;  // [..,C] added to the first / second pixel of each pair along the axis
};

at::Tensor Sel(const at::Tensor& cond, const at::Tensor& a, const at::Tensor& b, int extra_dims) {
  at::Tensor c = cond;
  for (int i = 0; i < extra_dims; ++i) c = c.unsqueeze(-1);
  return at::where(c, a, b);
}

// Antialias deltas for the pixel pairs along `dim` (1: vertical pairs, 2: horizontal pairs).
PairDeltas AntialiasAxis(const AaPixels& px, int64_t dim, double half_w, double half_h) {
  const int64_t n = px.tri.size(dim);
  auto first = [&](const at::Tensor& t) { return t.narrow(dim, 0, n - 1); };
  auto second = [&](const at::Tensor& t) { return t.narrow(dim, 1, n - 1); };
  at::Tensor tri_a = first(px.tri), tri_b = second(px.tri);
  at::Tensor cov_a = first(px.covered), cov_b = second(px.covered);
  // The occluder p is the nearer covered pixel; q the other.
  at::Tensor a_front = cov_a.logical_and(first(px.depth) <= second(px.depth));
  at::Tensor active = (tri_a != tri_b).logical_and(cov_a.logical_or(cov_b));
  at::Tensor s = Sel(a_front, first(px.screen), second(px.screen), 2);  // [..,3,2]
  at::Tensor p = Sel(a_front, first(px.centre), second(px.centre), 1);  // [..,2]
  at::Tensor q = Sel(a_front, second(px.centre), first(px.centre), 1);
  at::Tensor vid_p = Sel(a_front, first(px.vid), second(px.vid), 1);  // [..,3]
  at::Tensor vid_q = Sel(a_front, second(px.vid), first(px.vid), 1);
  at::Tensor cov_q = at::where(a_front, cov_b, cov_a);

  // Edge k runs from corner k+1 to corner k+2; e_k(X) = cross(end − start, X − start).
  at::Tensor start = Cycle(s, -2, 1), edge = Cycle(s, -2, 2) - start;  // [..,3,2]
  auto edge_fn = [&](const at::Tensor& pt) {
    at::Tensor d = pt.unsqueeze(-2) - start;
    return edge.select(-1, 0) * d.select(-1, 1) - edge.select(-1, 1) * d.select(-1, 0);  // [..,3]
  };
  at::Tensor e_p = edge_fn(p), e_q = edge_fn(q);
  at::Tensor e0 = s.select(-2, 1) - s.select(-2, 0), e1 = s.select(-2, 2) - s.select(-2, 0);
  at::Tensor area = (e0.select(-1, 0) * e1.select(-1, 1) - e0.select(-1, 1) * e1.select(-1, 0)).unsqueeze(-1);
  at::Tensor exits = (e_q * area < 0);  // q is outside edge k
  at::Tensor denom = at::where(exits, e_p - e_q, at::ones_like(e_p));
  at::Tensor t_k = at::where(exits, e_p / denom, at::full_like(e_p, 2.0));
  at::Tensor k = t_k.argmin(-1, /*keepdim=*/true);  // the first exit
  at::Tensor t = t_k.gather(-1, k).squeeze(-1).clamp(0.0, 2.0);

  // Only edges running across this axis (in pixels), and only silhouettes: q's triangle must not
  // share the edge's two vertices.
  at::Tensor dx = (edge.select(-1, 0) * half_w).abs().gather(-1, k).squeeze(-1);
  at::Tensor dy = (edge.select(-1, 1) * half_h).abs().gather(-1, k).squeeze(-1);
  at::Tensor across = dim == 2 ? dy >= dx : dx > dy;
  at::Tensor va = vid_p.gather(-1, at::remainder(k + 1, 3)), vb = vid_p.gather(-1, at::remainder(k + 2, 3));
  at::Tensor shared = cov_q.logical_and((vid_q == va).any(-1)).logical_and((vid_q == vb).any(-1));
  at::Tensor use = active.logical_and(t <= 1.0).logical_and(across).logical_and(shared.logical_not());

  at::Tensor c_p = Sel(a_front, first(px.color), second(px.color), 1);
  at::Tensor c_q = Sel(a_front, second(px.color), first(px.color), 1);
  at::Tensor used = use.to(t.scalar_type());
  at::Tensor w_q = ((t - 0.5).clamp_min(0.0) * used).unsqueeze(-1);  // p's triangle reaches into q
  at::Tensor w_p = ((0.5 - t).clamp_min(0.0) * used).unsqueeze(-1);  // q's side reaches into p
  at::Tensor d_q = w_q * (c_p - c_q), d_p = w_p * (c_q - c_p);
  return {Sel(a_front, d_p, d_q, 1), Sel(a_front, d_q, d_p, 1)};
}

}  // namespace

at::Tensor Antialias(const at::Tensor& color, const Fragments& frags, const at::Tensor& clip, const at::Tensor& faces) {
  TORCH_CHECK(color.dim() == 4, "antialias: color must be [B,H,W,C]");
  const at::Tensor& tri = frags.tri_id;
  TORCH_CHECK(
      tri.dim() == 3 && color.size(0) == tri.size(0) && color.size(1) == tri.size(1) && color.size(2) == tri.size(2),
      "antialias: color and fragments disagree in shape");
  TORCH_CHECK(clip.dim() == 3 && clip.size(2) == 4 && clip.size(0) == tri.size(0), "antialias: clip must be [B,V,4]");
  const int64_t b = tri.size(0), h = tri.size(1), w = tri.size(2);
  const auto dtype = color.scalar_type();

  AaPixels px;
  px.tri = tri;
  px.covered = tri >= 0;
  px.depth = at::where(px.covered, frags.depth.detach().squeeze(-1).to(dtype),
                       at::full({b, h, w}, std::numeric_limits<double>::infinity(), color.options()));
  at::Tensor cw = clip.select(-1, 3).unsqueeze(-1);
  // Only triangles with every w > 0 are ever covered; the guard keeps the unused entries finite.
  at::Tensor ndc = (clip.narrow(-1, 0, 2) / at::where(cw > 0, cw, at::ones_like(cw))).to(dtype);  // [B,V,2]
  px.screen = GatherCorners(ndc, faces, tri);
  px.vid = PixelVertexRows(faces, tri, clip.size(1), /*per_batch=*/false).view({b, h, w, 3});
  at::Tensor cx = PixelCentresNdc(w, false, at::kDouble, color.device()).to(dtype).view({1, 1, w}).expand({b, h, w});
  at::Tensor cy = PixelCentresNdc(h, true, at::kDouble, color.device()).to(dtype).view({1, h, 1}).expand({b, h, w});
  px.centre = at::stack({cx, cy}, -1);
  px.color = color;

  at::Tensor out = color;
  if (w > 1) {
    PairDeltas d = AntialiasAxis(px, 2, 0.5 * w, 0.5 * h);
    out = out + at::constant_pad_nd(d.first, {0, 0, 0, 1}) + at::constant_pad_nd(d.second, {0, 0, 1, 0});
  }
  if (h > 1) {
    PairDeltas d = AntialiasAxis(px, 1, 0.5 * w, 0.5 * h);
    out = out + at::constant_pad_nd(d.first, {0, 0, 0, 0, 0, 1}) + at::constant_pad_nd(d.second, {0, 0, 0, 0, 1, 0});
  }
  return out;
}

}  // namespace psd3d
