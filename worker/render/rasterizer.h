// Differentiable triangle rasterization without nvdiffrast (research notes §2a): a non-differentiable
// triangle-id pass, then perspective-correct barycentrics recomputed from the three clip-space
// vertices of each pixel's triangle (nvdiffrast's formula), which gives nvdiffrast's interior
// gradients w.r.t. vertex positions, and attribute interpolation on top. The twin does this with plain
// LibTorch ops through autograd; on CUDA one fused per-pixel kernel writes barycentrics, depth, mask
// and interpolated attributes, and its hand-written backward gives the same gradients
// (ComputeFragments, Rasterize). An optional antialias pass adds silhouette gradients.
//
// Conventions (docs/engine.md): clip space is OpenGL's (NDC in [−1,1]³); image row 0 is the top (NDC
// y = +1); the centre of pixel (row r, column c) of an H×W image is at NDC
//   fx = (2c+1)/W − 1,   fy = 1 − (2r+1)/H.
//
// The triangle-id pass (RasterizeTriangleIds):
//   - Coverage. With pᵢ' = (xᵢ − fx·wᵢ, yᵢ − fy·wᵢ) for the triangle's clip vertices (xᵢ,yᵢ,zᵢ,wᵢ),
//     a₀ = cross(p₁',p₂'), a₁ = cross(p₂',p₀'), a₂ = cross(p₀',p₁') are (up to one positive factor
//     w₀w₁w₂/wᵢ·area) the screen-space edge functions; the pixel centre is covered when all aᵢ ≥ 0 and
//     Σaᵢ > 0, or all aᵢ ≤ 0 and Σaᵢ < 0. Both windings are drawn: back faces are rasterized too
//     (open meshes show their inside; normals of back faces are the caller's business). Pixel centres
//     exactly on a shared edge are covered by both triangles (no cracks), the z-buffer picks one.
//   - Depth: NDC z/w at the pixel, d = Σaᵢzᵢ / Σaᵢwᵢ.
//   - Clipping: a triangle with any vertex at w ≤ 0 (at or behind the camera plane) or any non-finite
//     coordinate is skipped whole (no near-plane clipping into sub-triangles: keep meshes in front of
//     the camera); fragments with d outside [−1,1] (before the near or beyond the far plane) are dropped.
//   - Visibility: the smallest d wins; on exactly equal d the smaller triangle id wins. The CUDA kernel
//     does this with a 64-bit atomicMin on (order-preserving bits of d) << 32 | id, the twin with a
//     scatter-min on the same keys. Both evaluate the formulas above with the same IEEE float32
//     operations in the same order (no fused multiply-adds), so they agree bit for bit.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace psd3d {

// Clip-space positions [B,V,4] of world positions `vertices` ([V,3] shared, or [B,V,3]) under `mvp`
// [B,4,4] (cameras.h): [v,1]·mvpᵀ. Differentiable.
at::Tensor ToClipSpace(const at::Tensor& vertices, const at::Tensor& mvp);

// UV-space "clip" positions [1,V,4] for rasterizing a texture layout: u → x = 2u−1, v → y = 1−2v (glTF
// UVs: (0,0) is the top-left corner, and image row 0 is the top), z = 0, w = 1. Texel (r,c) of an H×W
// texture is then covered by the face whose UV triangle contains ((c+½)/W, (r+½)/H); overlapping faces
// resolve to the smaller face id (equal depth).
at::Tensor UvToClipSpace(const at::Tensor& uvs);

// Triangle id per pixel: clip [B,V,4] (converted to float32), faces [F,3] int64 (or int32) vertex
// indices in [0,V). Returns [B,H,W] int64, −1 where no triangle covers the pixel centre. Not
// differentiable. CUDA tensors use the CUDA kernel when built with PSD3D_WITH_CUDA, otherwise the twin.
// Out-of-range indices: the twin fails a TORCH_CHECK; the kernel (which never syncs to check) skips
// such faces.
at::Tensor RasterizeTriangleIds(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width);

// The pure-LibTorch twin (CPU or CUDA tensors): enumerates (triangle, pixel) pairs over each triangle's
// pixel bounding box, at most `max_pairs` at a time, tests them vectorized and keeps the per-pixel
// minimum key with scatter_reduce("amin"). Same result as the kernel.
at::Tensor RasterizeTriangleIdsTwin(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width,
                                    int64_t max_pairs = int64_t{1} << 21);

// Per-pixel results of rasterization. Dtypes follow `clip` (float64 clip gives float64 barycentrics).
struct Fragments {
  at::Tensor tri_id;  // [B,H,W] int64, −1 where empty
  at::Tensor bary;    // [B,H,W,3] perspective-correct barycentrics, differentiable w.r.t. clip; 0 where empty
  at::Tensor depth;   // [B,H,W,1] NDC z/w, differentiable w.r.t. clip; 1 (the far plane) where empty
  at::Tensor mask;    // [B,H,W,1] 1 where covered, else 0; no gradient (see Antialias)
  at::Tensor attr;    // [B,H,W,C] Σᵢ bᵢ·attr at each pixel (Interpolate's result), 0 where empty;
                      // defined only when attributes were passed in
};

// Barycentrics and depth for a given triangle-id image (nvdiffrast's formula, §2a of the notes):
// bᵢ = aᵢ/Σaⱼ with the aᵢ above (0 when Σaⱼ = 0), depth = Σbᵢzᵢ / Σbᵢwᵢ, from clip [B,V,4] (float32
// or float64), differentiable w.r.t. clip (and through ToClipSpace the world vertices). With `attr`
// ([B,V,C] or [1,V,C]) the attributes are interpolated too (Fragments::attr, as Interpolate(attr,
// tri_id, bary, faces)), differentiable w.r.t. attr and clip.
//
// CUDA float32 clip (and float32 attr) runs one fused kernel per pixel (its backward scatters into the
// clip and attribute gradients with atomics), wrapped in a torch::autograd::Function (first-order
// gradients only); anything else runs the twin. The kernel, which never syncs to check, treats a pixel
// whose id is outside [0,F), or whose face has a vertex index outside [0,V), as empty (mask 0); the
// twin fails a check instead.
Fragments ComputeFragments(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& tri_id,
                           const at::Tensor& attr = {});

// The pure-LibTorch twin of ComputeFragments (any device; the reference and the CPU path): gathers the
// three clip corners of every pixel and evaluates the formulas with autograd-tracked tensor ops.
Fragments ComputeFragmentsTwin(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& tri_id,
                               const at::Tensor& attr = {});

// The triangle-id pass (on clip without gradient) followed by ComputeFragments, with optional
// attribute interpolation. On CUDA float32 this is the fused path: the id pass's key buffer goes
// straight into the fragment kernel, which resolves the ids itself, so the whole forward is the id
// pass plus one per-pixel kernel. Prefer this (or ComputeFragments with attr) over Interpolate on
// Fragments::bary when the barycentrics are not changed in between.
Fragments Rasterize(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width,
                    const at::Tensor& attr = {});

// RasterizeTriangleIdsTwin followed by ComputeFragmentsTwin: the pure-LibTorch reference of Rasterize.
Fragments RasterizeTwin(const at::Tensor& clip, const at::Tensor& faces, int64_t height, int64_t width,
                        const at::Tensor& attr = {});

// Σᵢ bᵢ·attr[faces[tri,i]] per pixel: attr [B,V,C] or [1,V,C] (shared by the batch), tri_id [B,H,W],
// bary [B,H,W,3] → [B,H,W,C], 0 where empty. Differentiable w.r.t. attr and bary. Pure LibTorch on
// every device (for barycentrics that were modified after rasterization); the fused CUDA path is the
// `attr` argument of Rasterize/ComputeFragments.
at::Tensor Interpolate(const at::Tensor& attr, const at::Tensor& tri_id, const at::Tensor& bary,
                       const at::Tensor& faces);

// Silhouette antialiasing in the spirit of nvdiffrast's antialias (arXiv 2011.03277), pure LibTorch, so
// that coverage has gradients w.r.t. vertex positions. For every horizontally or vertically adjacent
// pixel pair (p,q) showing different triangles:
//   - the occluder is the covered pixel of the two with the smaller depth, say p with triangle T;
//   - T's edge that the segment from p's centre to q's centre leaves through is found from T's
//     screen-space edge functions e (affine, from the NDC vertices xᵢ/wᵢ, yᵢ/wᵢ): the crossing is at
//     t = e(p)/(e(p) − e(q)) ∈ [0,1] of the way from p to q (the first exit of the three edges);
//   - the edge is a silhouette unless q's triangle shares both of its vertices (an interior edge of a
//     connected surface: no blending there);
//   - a pair only handles edges running across its direction: horizontal pairs edges that are at least
//     as steep as 45° in pixels, vertical pairs the flatter ones, so no edge is counted twice;
//   - with the edge at t, the occluder covers the stretch [−½, t] of the pair's axis (pixel boxes are
//     [−½,½] and [½,1½]): if t > ½, q is covered by the fraction t − ½ and gets
//     color_q += (t−½)(color_p − color_q); if t < ½, p is uncovered by ½ − t and gets
//     color_p += (½−t)(color_q − color_p).
// t is differentiable in the vertex positions, so d(color)/d(vertex) = (color_p − color_q)·dt/d(vertex)
// at silhouette pixels: moving an edge outward raises coverage, and Σ antialiased mask ≈ the triangle's
// area in pixels (its gradient ≈ the area's). color [B,H,W,C] (shade after Interpolate, incl. the
// background); frags from Rasterize on the same clip/faces. Returns [B,H,W,C].
at::Tensor Antialias(const at::Tensor& color, const Fragments& frags, const at::Tensor& clip, const at::Tensor& faces);

// NDC coordinates of the pixel centres of an n-pixel axis as computed by both rasterizer paths:
// float32 (2i+1)/n − 1 for columns (`flip` false) and 1 − (2i+1)/n for rows (`flip` true). [n], dtype
// float32 or float64.
at::Tensor PixelCentresNdc(int64_t n, bool flip, at::ScalarType dtype, const at::Device& device);

}  // namespace psd3d
