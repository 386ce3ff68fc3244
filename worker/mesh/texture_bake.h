// Texture baking (research notes §1e, §2b): rasterize the mesh's UV layout with the image rasterizer
// (rasterizer.h, UvToClipSpace), interpolate 3D positions per texel and ask a color function for their
// colors. Seams: the face ids are first dilated into the empty texels around each face (a few passes of
// "take the largest id among the filled 8-neighbours"), and such a gutter texel gets the color of its
// face's plane extended to the texel centre (barycentrics extrapolated, not clamped). Bilinear lookups
// anywhere on a face, its edges and corners included, then read only that face's colors: exact for
// colors that are affine over a face, and no background or neighbour bleeds in. Texels still empty
// afterwards get the mean color (so mipmaps of unused cells don't darken the edges).
// Limitation: ids spread by rings, not by true distance, so where two faces are only a few texels
// apart (the acute tips of uv_atlas.h's halves at its smallest sizes), a gutter texel next to one
// face's tip can be claimed by the other face; lookups within about a texel of that tip then blend
// in the other face's plane color.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "worker/mesh/mesh.h"

namespace psd3d {

// Colors of world positions: [N,3] float32 → [N,3] sRGB in [0,1] (values are clamped to [0,1]). Called
// on surface points and on points of a face's plane just beyond its edges (gutter texels).
using ColorFn = std::function<at::Tensor(const at::Tensor& positions)>;

struct BakeOptions {
  int dilation_passes = 2;                // rings of gutter texels around each face (≤ the atlas gutter)
  bool fill_rest_with_mean = true;        // texels still empty afterwards get the mean baked color
  int64_t max_points_per_call = 1 << 18;  // color_fn is called on at most this many positions at a time
};

// A height×width×3 float32 sRGB texture for `mesh` (which must have uvs; texel (r,c) samples the face
// whose UV triangle contains ((c+½)/W, (r+½)/H)), on the mesh's device. Runs without gradients.
// InvalidArgument for an invalid mesh, missing uvs, a bad size, or a color_fn result that is not
// [N,3] finite.
absl::StatusOr<at::Tensor> BakeTexture(const Mesh& mesh, int64_t height, int64_t width, const ColorFn& color_fn,
                                       const BakeOptions& options = {});

// Grows a face-id image [H,W] int64 (−1 = empty): each pass gives every empty texel that has a
// non-empty 8-neighbour the largest such neighbour id. Deterministic.
at::Tensor DilateFaceIds(const at::Tensor& ids, int passes);

// Bilinear lookup with clamp-to-edge of texture [H,W,C] at glTF uvs [N,2] ((0,0) = top-left corner,
// texel centres at ((c+½)/W, (r+½)/H)) → [N,C]. Differentiable w.r.t. the texture and uvs.
at::Tensor SampleTexture(const at::Tensor& texture, const at::Tensor& uvs);

}  // namespace psd3d
