// Index arithmetic of MakeTetGrid's tetrahedral grid (tet_grid.h): N cells per axis, vertex (i,j,k) has id
// i + s(j + s·k) with s = N+1, cube (i,j,k) id i + N(j + N·k), and cube c's Kuhn tet l (0..5) id 6c + l.
// Every grid edge joins a vertex to a neighbour along one of 7 forward directions; the edge list,
// sorted by (lo, hi), therefore numbers a vertex's edges after all edges of lower vertices, in the
// order of their direction's id offset. So a tet's vertices and its edges' ids need no tables: the
// CUDA marching tets computes them here instead of reading the grid's 125 MB of int64 tables at N = 64.
// MakeTetGrid builds its tets from KuhnCorner; its edge tables come from sorting, and a CPU test checks
// every id here against them.
//
// Plain C++ (no Torch or CUDA headers): both the host compiler and nvcc include it.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define PSD3D_HOST_DEVICE __host__ __device__
#else
#define PSD3D_HOST_DEVICE
#endif

namespace psd3d {

// Cube corner c = x + 2y + 4z (x,y,z ∈ {0,1}). The six Kuhn tets all contain the diagonal 0–7; vertex k of
// tet l is corner KuhnCorner(l, k) of its cube. Tet l is (0, a, b, 7) with the middle pair nibbles
// 2l and 2l+1 of the packed table: {0,1,3,7} {0,5,1,7} {0,3,2,7} {0,2,6,7} {0,4,5,7} {0,6,4,7}, the
// usual monotone paths with three of them flipped so every tet is positively oriented.
PSD3D_HOST_DEVICE constexpr int KuhnCorner(int l, int k) {
  constexpr uint64_t kMiddle = 0x465462231531ull;  // nibble 2l+m-1 = corner of vertex m ∈ {1,2}, tet l
  return k == 0 ? 0 : k == 3 ? 7 : static_cast<int>((kMiddle >> (4 * (2 * l + k - 1))) & 0xF);
}

// Id offset of cube corner c from the cube's corner 0 in a grid of `side` = N+1 vertices per axis.
PSD3D_HOST_DEVICE constexpr int64_t KuhnCornerOffset(int c, int64_t side) {
  return (c & 1) + side * ((c >> 1) & 1) + side * side * (c >> 2);
}

// Forward direction d (0..6) has corner offset bits d + 1 (x = 1, y = 2, z = 4): +x, +y, +x+y, +z, +x+z,
// +y+z, +x+y+z, which is ascending id offset (1, s, s+1, s², s²+1, s²+s, s²+s+1). Both ends of a tet
// edge are corners of one cube, and the lower end's corner bits are a subset of the higher end's, so
// the edge between corners a and b leaves corner a & b in direction (a ^ b) − 1.
PSD3D_HOST_DEVICE constexpr int64_t KuhnDirectionOffset(int d, int64_t side) { return KuhnCornerOffset(d + 1, side); }

PSD3D_HOST_DEVICE constexpr int KuhnPopcount(uint32_t x) {
  int c = 0;
  for (; x != 0; x &= x - 1) ++c;
  return c;
}

// The 7-bit mask of directions whose edge from vertex (i,j,k) stays in the grid.
PSD3D_HOST_DEVICE constexpr uint32_t KuhnForwardMask(int64_t n, int64_t i, int64_t j, int64_t k) {
  uint32_t mask = 0;
  for (int d = 0; d < 7; ++d) {
    const int b = d + 1;
    if (i + (b & 1) <= n && j + ((b >> 1) & 1) <= n && k + (b >> 2) <= n) mask |= 1u << d;
  }
  return mask;
}

// Number of edges whose lower vertex has an id below vertex (i,j,k)'s: per direction, the vertices
// before it (whole z-slabs, then whole rows, then the row's start) whose edge in that direction exists.
PSD3D_HOST_DEVICE constexpr int64_t KuhnEdgesBefore(int64_t n, int64_t i, int64_t j, int64_t k) {
  int64_t total = 0;
  for (int d = 0; d < 7; ++d) {
    const int b = d + 1;
    const int64_t ax = n + 1 - (b & 1), ay = n + 1 - ((b >> 1) & 1), az = n + 1 - (b >> 2);
    total += (k < az ? k : az) * ay * ax;
    if (k < az) total += (j < ay ? j : ay) * ax + (j < ay ? (i < ax ? i : ax) : 0);
  }
  return total;
}

// Id in the sorted edge list of the edge from vertex (i,j,k) in direction d (which must be in its mask).
PSD3D_HOST_DEVICE constexpr int64_t KuhnEdgeId(int64_t n, int64_t i, int64_t j, int64_t k, int d) {
  return KuhnEdgesBefore(n, i, j, k) + KuhnPopcount(KuhnForwardMask(n, i, j, k) & ((1u << d) - 1u));
}

PSD3D_HOST_DEVICE constexpr int64_t KuhnNumEdges(int64_t n) { return KuhnEdgesBefore(n, 0, 0, n + 1); }

}  // namespace psd3d
