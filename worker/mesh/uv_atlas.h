// A per-triangle UV atlas (research notes §4a, option 2): every face gets its own texels, so any mesh
// (marching-tets output included) can be textured without xatlas or chart packing. Texels are spread
// evenly over faces regardless of their area, and every edge is a seam; texture_bake.h fills the
// gutters so bilinear filtering at the seams reads the face's own colors.
//
// Layout of a size×size texture (texel units, x to the right, y down, as glTF UVs):
//   - a k×k grid of square cells, k = ⌈√⌈F/2⌉⌉, each s = ⌊size/k⌋ texels wide (leftover texels on the
//     right and bottom stay unused); cell c = (row c / k, column c % k) holds faces 2c and 2c+1;
//   - face 2c is the upper-left half of its cell, a right isosceles triangle with corners (cell-local)
//     (g, g), (s−g−d, g), (g, s−g−d); face 2c+1 the lower-right half (s−g, s−g), (g+d, s−g), (s−g, g+d),
//     in the face's vertex order. g is the gutter and d = √2·g, so a face's legs are g texels from its
//     cell's border and the two hypotenuses are 2g apart: every face is 2g texels from every other;
//   - leg length L = s − (2+√2)·g must be at least kMinAtlasLeg texels, else the texture is too small.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "worker/mesh/mesh.h"

namespace psd3d {

struct AtlasOptions {
  double gutter = 2.0;  // texels between a face and its cell border (faces end up 2·gutter apart)
};

inline constexpr double kMinAtlasLeg = 2.0;

// Smallest texture size whose cells fit faces with legs of at least kMinAtlasLeg texels.
int64_t MinAtlasSize(int64_t num_faces, const AtlasOptions& options = {});

// A copy of `mesh` with vertices split per face (vertex 3f+i is corner i of face f; faces become
// [[0,1,2],[3,4,5],...]) and uvs laid out as above for a size×size texture. Colors are split along;
// a texture is dropped (it belonged to the old uvs). InvalidArgument for an invalid mesh, no faces,
// or a size below MinAtlasSize.
absl::StatusOr<Mesh> PerTriangleAtlas(const Mesh& mesh, int64_t texture_size, const AtlasOptions& options = {});

}  // namespace psd3d
