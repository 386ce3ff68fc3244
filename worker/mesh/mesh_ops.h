// Mesh operations for DMTet refinement and export, pure LibTorch (CPU or CUDA tensors). Geometric
// quantities and losses are differentiable in the vertex positions; topology queries are not.
// Faces follow the engine convention (CCW seen from outside), so face normals point outward.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "worker/mesh/mesh.h"

namespace psd3d {

// [F,3] unit face normals (right-hand rule on the face's vertex order). Degenerate faces give 0.
at::Tensor FaceNormals(const Mesh& mesh);
// [F] face areas.
at::Tensor FaceAreas(const Mesh& mesh);
// Scalar: the sum of face areas.
at::Tensor TotalArea(const Mesh& mesh);
// [V,3] unit vertex normals: the area-weighted sum of the normals of the faces around each vertex.
// Vertices without faces (or whose faces cancel) get 0.
at::Tensor VertexNormals(const Mesh& mesh);

// Edges shared by exactly two faces, and those faces (edges on more or fewer faces are left out).
struct EdgeFaces {
  at::Tensor edges;  // [E,2] int64 vertex ids (lo, hi), sorted
  at::Tensor faces;  // [E,2] int64 the two faces on each edge
};
EdgeFaces InteriorEdgeFaces(const Mesh& mesh);

// Mean over interior edges of 1 − cos(angle between the normals of the two faces): 0 for a flat or
// smoothly tessellated sheet, growing with folds. 0 when there is no interior edge.
at::Tensor NormalConsistencyLoss(const Mesh& mesh);

// [V,3] uniform Laplacian: each vertex minus the mean of its edge neighbours (0 for isolated vertices).
// 0 at interior vertices of a regular grid; a displaced vertex makes it nonzero.
at::Tensor UniformLaplacian(const Mesh& mesh);
// Mean over vertices of the squared norm of UniformLaplacian (squared: smooth at 0).
at::Tensor LaplacianLoss(const Mesh& mesh);

// Vertex-connected components (faces sharing a vertex are in one component).
struct Components {
  at::Tensor face_component;  // [F] int64 component id per face, numbered by first appearance in faces
  int64_t count = 0;
};
Components ConnectedComponents(const Mesh& mesh);

// The faces where keep_faces [F] (bool) is true, with unused vertices dropped and faces reindexed (vertex
// order kept). Vertex attributes (colors, uvs) follow; the texture is shared. Differentiable in vertices.
Mesh SelectFaces(const Mesh& mesh, const at::Tensor& keep_faces);
// Keeps the components whose area is at least min_area_fraction × the largest component's area
// (threestudio's isosurface_remove_outliers; 1.0 keeps only the largest), compacted by SelectFaces.
Mesh RemoveFloaters(const Mesh& mesh, double min_area_fraction);

// True when every directed edge (a,b) of the faces occurs exactly once and its reverse (b,a) exactly
// once as well: each edge is shared by exactly two faces traversing it in opposite directions, so the
// surface is closed (watertight) and consistently oriented. False for an empty mesh or a face with a
// repeated vertex; `why`, when given, receives the reason.
bool IsClosedAndConsistentlyOriented(const Mesh& mesh, std::string* why = nullptr);

}  // namespace psd3d
