// Marching tetrahedra: the case table (shared by the LibTorch twin and the CUDA kernels) and the CUDA
// launchers for the non-differentiable topology part. Plain C++: no CUDA or Torch headers, so both
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

// The CUDA topology runs in two phases so the caller can allocate outputs of the right size between them.
//
// Phase 1, classify: checks sdf [V] (and positions [V,3] when not null) for NaN/inf; edge_flags[e] = 1
// when edge e has a sign change; edge_offsets = exclusive scan of edge_flags over num_edges + 1 entries;
// tet_cases[t] = the case; tet_counts[t] = triangles of tet t; tet_offsets = exclusive scan of tet_counts
// over num_tets + 1 entries. edge_flags and edge_offsets hold num_edges + 1 entries, tet_counts and
// tet_offsets num_tets + 1. `scratch` (MarchingTetsScratchBytes bytes) holds the scans' temporary storage
// and the device-side totals, which are copied into *totals; this synchronizes the stream. Returns nullptr
// or a CUDA error string. Requires num_edges, 2 * num_tets < 2^31 (int32 offsets).
struct MarchingTetsTotals {
  int32_t num_vertices;                  // M: edges with a sign change = output vertices
  int32_t num_faces;                     // K: output triangles
  int32_t sdf_nan, sdf_inf;              // non-finite sdf values
  int32_t positions_nan, positions_inf;  // non-finite position rows (0 when positions is null)
};
size_t MarchingTetsScratchBytes(int64_t num_edges, int64_t num_tets);
const char* MarchingTetsClassifyCuda(const float* sdf, const float* positions, int64_t num_vertices,
                                     const int64_t* edges, int64_t num_edges, const int64_t* tets, int64_t num_tets,
                                     int32_t* edge_flags, int32_t* edge_offsets, uint8_t* tet_cases,
                                     int32_t* tet_counts, int32_t* tet_offsets, void* scratch, size_t scratch_bytes,
                                     MarchingTetsTotals* totals, cudaStream_t stream);
const char* MarchingTetsClassifyCuda(const double* sdf, const double* positions, int64_t num_vertices,
                                     const int64_t* edges, int64_t num_edges, const int64_t* tets, int64_t num_tets,
                                     int32_t* edge_flags, int32_t* edge_offsets, uint8_t* tet_cases,
                                     int32_t* tet_counts, int32_t* tet_offsets, void* scratch, size_t scratch_bytes,
                                     MarchingTetsTotals* totals, cudaStream_t stream);

// Phase 2, emit (asynchronous): crossing_edges[M] = ids of the edges with a sign change, ascending (output
// vertex m lies on edge crossing_edges[m]); faces[K,3] = output vertex ids of every triangle, ordered by
// tet, then by the triangle's position in the table row. The same order as the LibTorch twin, so results
// are equal.
const char* MarchingTetsEmitCuda(const int32_t* edge_offsets, int64_t num_edges, const uint8_t* tet_cases,
                                 const int32_t* tet_offsets, const int64_t* tet_edges, int64_t num_tets,
                                 int64_t* crossing_edges, int64_t* faces, cudaStream_t stream);

}  // namespace psd3d
