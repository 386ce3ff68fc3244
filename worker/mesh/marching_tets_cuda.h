// Marching tetrahedra: the case table (shared by the LibTorch twin and the CUDA kernels) and the CUDA
// launchers: topology, vertex interpolation and its backward. Plain C++: no CUDA or Torch headers, so both
// nvcc (marching_tets.cu) and the host compiler (marching_tets.cc) include it.
#pragma once

#include <cstddef>
#include <cstdint>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

namespace psd3d {

// Case = Σ 2^i over the tet's inside vertices (sdf < 0; sdf == 0 counts as outside). Each row lists up to
// two triangles as local edge ids (numbered as kTetEdgeVertices in tet_grid.h), -1 padded. Triangles are
// oriented so that on a positively oriented tet their right-hand normal points to the outside
// vertices: counter-clockwise seen from outside. One triangle when one vertex is separated from the
// other three, two (a quad split on a diagonal) when two and two. marching_tets_test.cc re-derives the
// orientation geometrically for every case.
struct MarchingTetsTable {
  int8_t triangles[16][6];
  int8_t num_triangles[16];
};

// clang-format off
inline constexpr MarchingTetsTable kMarchingTetsTable = {
    {
        {-1, -1, -1, -1, -1, -1},  //  0: all outside
        {0, 1, 2, -1, -1, -1},     //  1: v0 inside
        {0, 4, 3, -1, -1, -1},     //  2: v1
        {1, 2, 4, 1, 4, 3},        //  3: v0 v1
        {1, 3, 5, -1, -1, -1},     //  4: v2
        {0, 5, 2, 0, 3, 5},        //  5: v0 v2
        {0, 4, 5, 0, 5, 1},        //  6: v1 v2
        {2, 4, 5, -1, -1, -1},     //  7: v3 outside
        {2, 5, 4, -1, -1, -1},     //  8: v3
        {0, 1, 5, 0, 5, 4},        //  9: v0 v3
        {0, 5, 3, 0, 2, 5},        // 10: v1 v3
        {1, 5, 3, -1, -1, -1},     // 11: v2 outside
        {1, 3, 4, 1, 4, 2},        // 12: v2 v3
        {0, 3, 4, -1, -1, -1},     // 13: v1 outside
        {0, 2, 1, -1, -1, -1},     // 14: v0 outside
        {-1, -1, -1, -1, -1, -1},  // 15: all inside
    },
    {0, 1, 1, 2, 1, 2, 2, 1, 1, 2, 2, 1, 2, 1, 1, 0},
};
// clang-format on

// The CUDA marching tets runs in two phases so the caller can allocate outputs of the right size
// between them. Both work in one device workspace of MarchingTetsWorkspaceBytes(E, T) bytes, which
// phase 1 initializes (any content on entry) and phase 2 reads. Requires E + 2T + 2 < 2^31 (int32
// offsets).
size_t MarchingTetsWorkspaceBytes(int64_t num_edges, int64_t num_tets);

// Phase 1, classify (waits for the host copy of the totals): checks sdf [V] (and positions [V,3] when
// not null) for NaN/inf, classifies every tet (its case and triangle count), marks the crossing edges
// (those of tets with triangles whose two ends differ in sign: every grid edge belongs to a tet, so no
// edge list is read) and counts M and K; the counts are copied into *totals. The scan that numbers
// the crossing edges and the triangles is enqueued after the copy and runs while the host allocates.
struct MarchingTetsTotals {
  int32_t num_vertices;                  // M: edges with a sign change = output vertices
  int32_t num_faces;                     // K: output triangles
  int32_t sdf_nan, sdf_inf;              // non-finite sdf values
  int32_t positions_nan, positions_inf;  // non-finite position rows (0 when positions is null)
};
const char* MarchingTetsClassifyCuda(const float* sdf, const float* positions, int64_t num_vertices,
                                     const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                     int64_t num_edges, void* workspace, MarchingTetsTotals* totals,
                                     cudaStream_t stream);
const char* MarchingTetsClassifyCuda(const double* sdf, const double* positions, int64_t num_vertices,
                                     const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                     int64_t num_edges, void* workspace, MarchingTetsTotals* totals,
                                     cudaStream_t stream);

// Phase 2, emit (asynchronous): crossing_edges[M] = ids of the edges with a sign change, ascending (output
// vertex m lies on edge crossing_edges[m]); faces[K,3] = output vertex ids of every triangle, ordered by
// tet, then by the triangle's position in the table row. The same order as the LibTorch twin, so results
// are equal. With `vertices` ([M,3], not null), also the vertex positions on their edges (whose ends are
// the tets' vertices, lower id first as in the grid's edge list), p = (p_a·s_b − p_b·s_a) / (s_b − s_a)
// with the twin's IEEE operations, so they are equal too. `totals` are phase 1's.
const char* MarchingTetsEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t num_edges,
                                 const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                 int64_t* crossing_edges, int64_t* faces, const float* positions, const float* sdf,
                                 float* vertices, cudaStream_t stream);
const char* MarchingTetsEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t num_edges,
                                 const int64_t* tets, const int64_t* tet_edges, int64_t num_tets,
                                 int64_t* crossing_edges, int64_t* faces, const double* positions, const double* sdf,
                                 double* vertices, cudaStream_t stream);

// The same two phases on MakeTetGrid's grid of N cells per axis (IsKuhnGrid): tet and edge ids are
// computed (kuhn_grid.h), so no tables are passed, and the outputs are equal to the general path's.
// The workspace has MarchingTetsGridWorkspaceBytes(N) bytes. Requires (N+1)³ + N³ + 2 < 2^31 and
// E + 12N³ + 2 < 2^31 (int32 offsets: N ≤ 479).
size_t MarchingTetsGridWorkspaceBytes(int64_t n);
const char* MarchingTetsGridClassifyCuda(const float* sdf, const float* positions, int64_t n, void* workspace,
                                         MarchingTetsTotals* totals, cudaStream_t stream);
const char* MarchingTetsGridClassifyCuda(const double* sdf, const double* positions, int64_t n, void* workspace,
                                         MarchingTetsTotals* totals, cudaStream_t stream);
const char* MarchingTetsGridEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t n,
                                     int64_t* crossing_edges, int64_t* faces, const float* positions, const float* sdf,
                                     float* vertices, cudaStream_t stream);
const char* MarchingTetsGridEmitCuda(const void* workspace, const MarchingTetsTotals& totals, int64_t n,
                                     int64_t* crossing_edges, int64_t* faces, const double* positions,
                                     const double* sdf, double* vertices, cudaStream_t stream);

// Backward of the vertex positions: with d = s_b − s_a and upstream g = grad_vertices[m] ([M,3],
// contiguous),
//   ∂p/∂p_a = s_b/d,  ∂p/∂p_b = −s_a/d,  ∂p/∂s_a = s_b (p_a − p_b)/d²,  ∂p/∂s_b = −s_a (p_a − p_b)/d²,
// accumulated with atomics into grad_positions [V,3] and grad_sdf [V] (zero-filled by the caller; either
// may be null).
const char* MarchingTetsVertexBackwardCuda(const int64_t* edges, const int64_t* crossing_edges, int64_t num_crossings,
                                           const float* positions, const float* sdf, const float* grad_vertices,
                                           float* grad_positions, float* grad_sdf, cudaStream_t stream);
const char* MarchingTetsVertexBackwardCuda(const int64_t* edges, const int64_t* crossing_edges, int64_t num_crossings,
                                           const double* positions, const double* sdf, const double* grad_vertices,
                                           double* grad_positions, double* grad_sdf, cudaStream_t stream);

}  // namespace psd3d
