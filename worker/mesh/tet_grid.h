// The tetrahedral grid DMTet deforms and marches: generated in code (no Quartet .npz files), a cube
// grid with N cells per axis over [-h,h]³, each cube split into 6 tetrahedra around its main diagonal
// (Kuhn/Freudenthal split). Every cube uses the same diagonal direction, so neighbouring cubes split
// their shared faces identically and the tet mesh is conforming. N = 64 matches threestudio's
// "128_tets" grid in vertex and tet counts (docs/references/libtorch-pipeline.md §2d).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace psd3d {

// Local edge numbering of a tet (v0,v1,v2,v3), shared by TetGrid::tet_edges and the marching-tets
// triangle table: edge k joins kTetEdgeVertices[k][0] and kTetEdgeVertices[k][1].
inline constexpr int kTetEdgeVertices[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

struct TetGrid {
  at::Tensor vertices;   // [V,3] float32, V = (N+1)³; vertex (i,j,k) (x,y,z cell indices) has id i + (N+1)(j + (N+1)k)
  at::Tensor tets;       // [T,4] int64, T = 6N³, all positively oriented: det[v1-v0, v2-v0, v3-v0] > 0
  at::Tensor edges;      // [E,2] int64 unique undirected edges as (lo, hi), lo < hi, sorted lexicographically
  at::Tensor tet_edges;  // [T,6] int64: tet_edges[t][k] is the id in `edges` of local edge k (kTetEdgeVertices)
  // N, cells per axis. Nonzero means MakeTetGrid's layout (kuhn_grid.h), from which the CUDA marching
  // tets computes tet and edge ids instead of reading the tables; 0 for a hand-built grid.
  int64_t resolution = 0;
  double half_extent = 1.0;  // h: the grid spans [-h,h]³

  double spacing() const { return 2.0 * half_extent / static_cast<double>(resolution); }  // cell edge length
  int64_t num_vertices() const { return vertices.size(0); }
  int64_t num_tets() const { return tets.size(0); }
  int64_t num_edges() const { return edges.size(0); }
  TetGrid to(const at::Device& device) const;
};

// Whether `grid` has MakeTetGrid's layout for its resolution (sizes checked, not every id).
bool IsKuhnGrid(const TetGrid& grid);

// Builds the grid with vectorized tensor ops on `device` (so a large grid can be built on the GPU).
// Requires 1 <= n <= 1024 and half_extent > 0.
TetGrid MakeTetGrid(int64_t n, double half_extent = 1.0, const at::Device& device = at::kCPU);

}  // namespace psd3d
