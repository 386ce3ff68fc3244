// Mesh ops: normals, areas, regularizers, connected components, floater removal, closedness check.
#include "worker/mesh/mesh_ops.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <string>
#include <vector>

#include "worker/mesh/marching_tets.h"
#include "worker/mesh/tet_grid.h"

namespace psd3d {
namespace {

Mesh MakeMesh(const std::vector<float>& v, const std::vector<int64_t>& f) {
  Mesh m;
  m.vertices = at::tensor(v, at::kFloat).view({-1, 3});
  m.faces = at::tensor(f, at::kLong).view({-1, 3});
  return m;
}

// Unit cube [0,1]³, 12 triangles, CCW seen from outside.
Mesh Cube() {
  std::vector<float> v;
  for (int i = 0; i < 8; ++i) v.insert(v.end(), {float(i & 1), float(i >> 1 & 1), float(i >> 2 & 1)});
  return MakeMesh(v, {0, 2, 3, 0, 3, 1,    // z = 0, normal −z
                      4, 5, 7, 4, 7, 6,    // z = 1, +z
                      0, 1, 5, 0, 5, 4,    // y = 0, −y
                      2, 6, 7, 2, 7, 3,    // y = 1, +y
                      0, 4, 6, 0, 6, 2,    // x = 0, −x
                      1, 3, 7, 1, 7, 5});  // x = 1, +x
}

// Regular tetrahedron with vertices at alternate cube corners, centred at the origin.
Mesh Tetrahedron() {
  return MakeMesh({1, 1, 1, 1, -1, -1, -1, 1, -1, -1, -1, 1}, {0, 1, 2, 0, 3, 1, 0, 2, 3, 1, 3, 2});
}

// An n×n grid of unit squares in the z = 0 plane, each split on the same diagonal; CCW seen from +z.
Mesh FlatGrid(int n) {
  std::vector<float> v;
  std::vector<int64_t> f;
  for (int j = 0; j <= n; ++j) {
    for (int i = 0; i <= n; ++i) v.insert(v.end(), {float(i), float(j), 0.f});
  }
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < n; ++i) {
      const int64_t a = j * (n + 1) + i, b = a + 1, c = a + n + 1, d = c + 1;
      f.insert(f.end(), {a, b, d, a, d, c});
    }
  }
  return MakeMesh(v, f);
}

Mesh Sphere(double r, at::Tensor centre, int n = 16) {
  TetGrid g = MakeTetGrid(n);
  return MarchingTets(g.vertices, (g.vertices - centre).norm(2, 1) - r, g);
}

Mesh Concatenate(const Mesh& a, const Mesh& b) {
  Mesh m;
  m.vertices = at::cat({a.vertices, b.vertices});
  m.faces = at::cat({a.faces, b.faces + a.num_vertices()});
  return m;
}

TEST(MeshOps, CubeNormalsAndAreasAreExact) {
  Mesh cube = Cube();
  const at::Tensor n = FaceNormals(cube);
  const at::Tensor expected =
      at::tensor({0.f, 0.f, -1.f, 0.f, 0.f, 1.f, 0.f, -1.f, 0.f, 0.f, 1.f, 0.f, -1.f, 0.f, 0.f, 1.f, 0.f, 0.f})
          .view({6, 1, 3})
          .expand({6, 2, 3})
          .reshape({12, 3});
  EXPECT_TRUE(at::equal(n, expected)) << n;
  EXPECT_TRUE(at::equal(FaceAreas(cube), at::full({12}, 0.5f)));
  EXPECT_FLOAT_EQ(TotalArea(cube).item<float>(), 6.f);
  // Vertex normals point away from the centre.
  const at::Tensor vn = VertexNormals(cube);
  EXPECT_TRUE(at::allclose(vn.norm(2, 1), at::ones({8})));
  EXPECT_GT(((cube.vertices - 0.5) * vn).sum(1).min().item<float>(), 0.f);
  std::string why;
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(cube, &why)) << why;
  EXPECT_EQ(ConnectedComponents(cube).count, 1);
}

TEST(MeshOps, TetrahedronVertexNormalsAreExactlyRadial) {
  Mesh t = Tetrahedron();
  // Three equal faces meet at each vertex, so the area-weighted normal is the direction of the vertex.
  const at::Tensor expected = t.vertices / std::sqrt(3.f);
  EXPECT_TRUE(at::allclose(VertexNormals(t), expected, 1e-6, 1e-6)) << VertexNormals(t);
  // Face normals are minus the direction of the opposite vertex.
  const at::Tensor opposite = t.vertices.index_select(0, at::tensor({3, 2, 1, 0}, at::kLong));
  EXPECT_TRUE(at::allclose(FaceNormals(t), -opposite / std::sqrt(3.f), 1e-6, 1e-6));
  EXPECT_NEAR(TotalArea(t).item<float>(), 4 * std::sqrt(3.f) / 4 * 8, 1e-5);  // edge 2√2
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(t));
}

TEST(MeshOps, DegenerateFacesGiveZeroNormalsAndFiniteGradients) {
  Mesh m = MakeMesh({0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0}, {0, 1, 2, 0, 1, 3});
  m.vertices.requires_grad_(true);
  const at::Tensor n = FaceNormals(m);
  EXPECT_TRUE(at::equal(n[0], at::zeros({3})));
  EXPECT_FLOAT_EQ(FaceAreas(m)[0].item<float>(), 0.f);
  const at::Tensor loss = TotalArea(m) + VertexNormals(m).sum() + n.sum();
  const at::Tensor g = torch::autograd::grad({loss}, {m.vertices})[0];
  EXPECT_TRUE(at::isfinite(g).all().item<bool>()) << g;
}

TEST(MeshOps, NormalConsistencyIsZeroWhenFlatAndPositiveWhenFolded) {
  Mesh flat = FlatGrid(3);
  EXPECT_FLOAT_EQ(NormalConsistencyLoss(flat).item<float>(), 0.f);
  const EdgeFaces ef = InteriorEdgeFaces(flat);
  EXPECT_EQ(ef.edges.size(0), 3 * 3 + 2 * 3 * 2);  // diagonals + interior grid lines
  // Fold along x = 1: vertices with x > 1 rise.
  Mesh folded = flat;
  folded.vertices = flat.vertices.clone();
  folded.vertices.select(1, 2).copy_((flat.vertices.select(1, 0) - 1).clamp_min(0));
  const float folded_loss = NormalConsistencyLoss(folded).item<float>();
  EXPECT_GT(folded_loss, 0.f);
  // Exactly: the 3 fold edges contribute 1 − cos 45° each.
  EXPECT_NEAR(folded_loss, 3 * (1 - std::sqrt(0.5)) / ef.edges.size(0), 1e-6);
  // Differentiable: the gradient pushes the fold back.
  Mesh var = folded;
  var.vertices = folded.vertices.clone().requires_grad_(true);
  const at::Tensor g = torch::autograd::grad({NormalConsistencyLoss(var)}, {var.vertices})[0];
  EXPECT_GT(g.abs().sum().item<float>(), 0.f);
  // A closed cube: every edge has two faces; 6 of the 18 edges are flat diagonals, 12 are 90° creases.
  EXPECT_NEAR(NormalConsistencyLoss(Cube()).item<float>(), 12.0 / 18.0, 1e-6);
}

TEST(MeshOps, LaplacianIsZeroInsideARegularGridAndGrowsWithADisplacedVertex) {
  Mesh flat = FlatGrid(4);
  const at::Tensor d = UniformLaplacian(flat);
  // Interior vertices (1..3 in each direction) have symmetric neighbourhoods.
  for (int j = 1; j < 4; ++j) {
    for (int i = 1; i < 4; ++i) EXPECT_TRUE(at::allclose(d[j * 5 + i], at::zeros({3}), 0, 1e-6)) << i << "," << j;
  }
  const float before = LaplacianLoss(flat).item<float>();
  Mesh bumped = flat;
  bumped.vertices = flat.vertices.clone();
  bumped.vertices[2 * 5 + 2][2].fill_(0.5f);
  EXPECT_NEAR(UniformLaplacian(bumped)[12][2].item<float>(), 0.5f, 1e-6);
  EXPECT_NEAR(UniformLaplacian(bumped)[13][2].item<float>(), -0.5f / 6, 1e-6);  // a neighbour of degree 6
  EXPECT_GT(LaplacianLoss(bumped).item<float>(), before);
  // The gradient pulls the bump down.
  bumped.vertices.requires_grad_(true);
  const at::Tensor g = torch::autograd::grad({LaplacianLoss(bumped)}, {bumped.vertices})[0];
  EXPECT_GT(g[12][2].item<float>(), 0.f);
  // An isolated vertex has no Laplacian.
  Mesh extra = flat;
  extra.vertices = at::cat({flat.vertices, at::full({1, 3}, 7.f)});
  EXPECT_TRUE(at::equal(UniformLaplacian(extra)[25], at::zeros({3})));
}

TEST(MeshOps, ComponentsOfTwoSpheresAndFloaterRemoval) {
  const Mesh big = Sphere(0.4, at::tensor({-0.35f, 0.f, 0.f}));
  const Mesh small = Sphere(0.2, at::tensor({0.6f, 0.1f, 0.f}));
  Mesh both = Concatenate(big, small);
  both.colors = at::rand({both.num_vertices(), 3});
  const Components c = ConnectedComponents(both);
  EXPECT_EQ(c.count, 2);
  EXPECT_TRUE(at::equal(c.face_component.narrow(0, 0, big.num_faces()), at::zeros({big.num_faces()}, at::kLong)));
  EXPECT_TRUE(at::equal(c.face_component.narrow(0, big.num_faces(), small.num_faces()),
                        at::ones({small.num_faces()}, at::kLong)));

  // The small sphere has about a quarter of the big one's area: kept at 0.1, dropped at 0.5 and 1.0.
  EXPECT_EQ(RemoveFloaters(both, 0.1).num_faces(), both.num_faces());
  for (double fraction : {0.5, 1.0}) {
    const Mesh kept = RemoveFloaters(both, fraction);
    EXPECT_TRUE(at::equal(kept.faces, big.faces));
    EXPECT_TRUE(at::equal(kept.vertices, big.vertices));
    EXPECT_TRUE(at::equal(kept.colors, both.colors.narrow(0, 0, big.num_vertices())));
    EXPECT_TRUE(ValidateMesh(kept).ok());
    EXPECT_TRUE(IsClosedAndConsistentlyOriented(kept));
  }
  // Small sphere listed first: it is dropped and the big one's faces are reindexed.
  const Mesh reversed = Concatenate(small, big);
  const Mesh kept = RemoveFloaters(reversed, 0.5);
  EXPECT_TRUE(at::equal(kept.faces, big.faces));
  EXPECT_TRUE(at::equal(kept.vertices, big.vertices));
}

TEST(MeshOps, SelectFacesDropsUnusedVerticesAndKeepsGradients) {
  Mesh cube = Cube();
  cube.vertices.requires_grad_(true);
  const at::Tensor keep = at::zeros({12}, at::kBool);
  keep.narrow(0, 0, 2).fill_(true);  // the z = 0 side
  const Mesh side = SelectFaces(cube, keep);
  EXPECT_EQ(side.num_vertices(), 4);
  EXPECT_TRUE(at::equal(side.faces, at::tensor({0, 2, 3, 0, 3, 1}, at::kLong).view({2, 3})));
  const at::Tensor g = torch::autograd::grad({side.vertices.sum()}, {cube.vertices})[0];
  EXPECT_TRUE(at::equal(g.sum(1), at::tensor({3.f, 3.f, 3.f, 3.f, 0.f, 0.f, 0.f, 0.f})));
  EXPECT_EQ(SelectFaces(cube, at::zeros({12}, at::kBool)).num_vertices(), 0);
}

TEST(MeshOps, ClosednessCheckFindsHolesAndFlippedFaces) {
  std::string why;
  Mesh open = Cube();
  open.faces = open.faces.narrow(0, 0, 11);
  EXPECT_FALSE(IsClosedAndConsistentlyOriented(open, &why));
  EXPECT_NE(why.find("no opposite half-edge"), std::string::npos) << why;
  Mesh flipped = Cube();
  flipped.faces = flipped.faces.clone();
  flipped.faces[0].copy_(at::tensor({0, 3, 2}, at::kLong));
  EXPECT_FALSE(IsClosedAndConsistentlyOriented(flipped, &why));
  EXPECT_NE(why.find("more than once"), std::string::npos) << why;
  Mesh degenerate = Cube();
  degenerate.faces = at::cat({degenerate.faces, at::tensor({1, 1, 2}, at::kLong).view({1, 3})});
  EXPECT_FALSE(IsClosedAndConsistentlyOriented(degenerate, &why));
  EXPECT_NE(why.find("to itself"), std::string::npos) << why;
  Mesh empty = MakeMesh({0, 0, 0}, {0, 0, 0});
  empty.faces = at::zeros({0, 3}, at::kLong);
  EXPECT_FALSE(IsClosedAndConsistentlyOriented(empty, &why));
  // Two disjoint cubes: closed and oriented.
  Mesh two = Concatenate(Cube(), Cube());
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(two, &why)) << why;
}

TEST(MeshOps, BadShapesThrow) {
  Mesh m = Cube();
  m.faces = m.faces.to(at::kInt);
  EXPECT_THROW(FaceNormals(m), c10::Error);
  EXPECT_THROW(SelectFaces(Cube(), at::ones({3}, at::kBool)), c10::Error);
  Mesh out_of_range = Cube();
  out_of_range.faces = out_of_range.faces + 1;
  EXPECT_THROW(ConnectedComponents(out_of_range), c10::Error);
}

}  // namespace
}  // namespace psd3d
