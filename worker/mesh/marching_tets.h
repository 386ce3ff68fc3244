// Differentiable marching tetrahedra over a TetGrid (threestudio's MarchingTetrahedraHelper, redone).
//
// Sign convention: sdf < 0 is INSIDE, sdf >= 0 outside (a vertex with sdf exactly 0 counts as outside).
// The DMTet initialisation sdf = clamp(threshold − density, −1, 1) follows it: dense means inside.
// Output faces are counter-clockwise seen from outside (right-hand normals point to increasing sdf),
// the engine's Mesh convention, provided the grid's tets are positively oriented (MakeTetGrid's are).
//
// Topology (which edges cross zero, which triangles) is computed without gradient; each output vertex
// lies on one crossing edge (a,b) at the zero of the linear interpolant,
//   p = (p_a·s_b − p_b·s_a) / (s_b − s_a),
// so gradients flow to the vertex positions (hence a deformation) and the sdf. The twin computes it with
// tensor ops through autograd; on CUDA the emit kernel writes it (with the twin's IEEE operations, so
// the values are equal) and one kernel with a hand-written backward scatters the gradients, the whole
// op being one autograd node.
// Output vertices are deduplicated (one per crossing edge), so a surface that stays inside the grid is
// closed and consistently oriented.
#pragma once

#include <ATen/ATen.h>

#include "worker/mesh/mesh.h"
#include "worker/mesh/tet_grid.h"

namespace psd3d {

// The gradient-free part: deterministic, identical between the CUDA kernel and the LibTorch twin.
struct TetTopology {
  // [M] int64 ids of the grid edges with a sign change, ascending; output vertex m lies on crossing_edges[m].
  at::Tensor crossing_edges;
  // [K,3] int64 output vertex ids (indices into crossing_edges); ordered by tet, then by triangle in the table.
  at::Tensor faces;
};

// Dispatch: the CUDA kernels for CUDA tensors when built with PSD3D_WITH_CUDA, the twin otherwise.
// sdf: [V] or [V,1] float32/float64 on the grid's device; must be finite (checked).
TetTopology MarchingTetsTopology(const at::Tensor& sdf, const TetGrid& grid);
// Pure LibTorch, vectorized (no per-tet loops); runs on CPU and CUDA tensors alike.
TetTopology MarchingTetsTopologyTwin(const at::Tensor& sdf, const TetGrid& grid);

// Zero crossings of `sdf` on grid edges `crossing_edges`, differentiable in positions and sdf: [M,3].
at::Tensor InterpolateCrossings(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid,
                                const at::Tensor& crossing_edges);

// The surface sdf = 0 as a Mesh (vertices [M,3] in positions' dtype, faces [K,3] int64).
// positions: [V,3] grid vertex positions, e.g. grid.vertices or grid.vertices + deformation; float32 (the
// pipeline) or float64 (gradient checks); sdf: [V] or [V,1] of the same dtype. An sdf without a sign
// change gives an empty mesh ([0,3] tensors). Throws (TORCH_CHECK) on wrong shapes, dtypes, devices and
// on NaN or infinite sdf values or positions.
Mesh MarchingTets(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid);
// The same with the topology always computed by the LibTorch twin.
Mesh MarchingTetsTwin(const at::Tensor& positions, const at::Tensor& sdf, const TetGrid& grid);

}  // namespace psd3d
