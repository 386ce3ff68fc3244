// Tet grid generation, marching tetrahedra (topology, orientation, placement, gradients) and DMTet.
#include "worker/mesh/marching_tets.h"

#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <string>

#include "worker/mesh/dmtet.h"
#include "worker/mesh/kuhn_grid.h"
#include "worker/mesh/marching_tets_cuda.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/mesh/tet_grid.h"

namespace psd3d {
namespace {

// [T] signed volumes of tets over vertex positions (float64).
at::Tensor SignedVolumes(const at::Tensor& vertices, const at::Tensor& tets) {
  const at::Tensor v = vertices.to(at::kDouble);
  auto corner = [&](int k) { return v.index_select(0, tets.select(1, k).contiguous()); };
  const at::Tensor p0 = corner(0);
  const at::Tensor m = at::stack({corner(1) - p0, corner(2) - p0, corner(3) - p0}, 1);  // [T,3,3]
  return at::linalg_det(m) / 6.0;
}

at::Tensor SphereSdf(const at::Tensor& p, double r) { return p.norm(2, 1) - r; }

TEST(TetGrid, SizesOrientationVolumeAndConformity) {
  const int64_t n = 4;
  const double h = 1.5;
  TetGrid g = MakeTetGrid(n, h);
  ASSERT_EQ(g.vertices.sizes(), (at::IntArrayRef{125, 3}));
  ASSERT_EQ(g.tets.sizes(), (at::IntArrayRef{6 * 64, 4}));
  EXPECT_EQ(g.vertices.scalar_type(), at::kFloat);
  EXPECT_EQ(g.tets.scalar_type(), at::kLong);
  EXPECT_DOUBLE_EQ(g.spacing(), 0.75);
  EXPECT_FLOAT_EQ(g.vertices.min().item<float>(), -1.5f);
  EXPECT_FLOAT_EQ(g.vertices.max().item<float>(), 1.5f);
  // Vertex (i,j,k) sits at -h + spacing·(i,j,k).
  EXPECT_TRUE(at::allclose(g.vertices[1 + 5 * (2 + 5 * 3)], at::tensor({-0.75f, 0.0f, 0.75f})));

  // Every tet is positively oriented with the volume of a sixth of a cell; together they fill the cube.
  const at::Tensor vol = SignedVolumes(g.vertices, g.tets);
  const double cell = std::pow(g.spacing(), 3);
  EXPECT_TRUE(at::allclose(vol, at::full_like(vol, cell / 6), 1e-9, 1e-12));
  EXPECT_NEAR(vol.sum().item<double>(), std::pow(2 * h, 3), 1e-9);

  // Each face is shared by two tets, except boundary faces (one tet): 2 triangles per cube face on the
  // boundary of the big cube, 6 sides × n² cube faces.
  const at::Tensor faces =
      at::cat({g.tets.index_select(1, at::tensor({1, 2, 3})), g.tets.index_select(1, at::tensor({0, 2, 3})),
               g.tets.index_select(1, at::tensor({0, 1, 3})), g.tets.index_select(1, at::tensor({0, 1, 2}))});
  const at::Tensor sorted = std::get<0>(faces.sort(1));
  const int64_t nv = g.num_vertices();
  const at::Tensor keys = (sorted.select(1, 0) * nv + sorted.select(1, 1)) * nv + sorted.select(1, 2);
  at::Tensor counts = std::get<2>(at::_unique2(keys, true, false, true));
  EXPECT_EQ(counts.max().item<int64_t>(), 2);
  EXPECT_EQ((counts == 1).sum().item<int64_t>(), 6 * 2 * n * n);
}

TEST(TetGrid, EdgesAreUniqueSortedAndIndexedByTetEdges) {
  TetGrid g = MakeTetGrid(3);
  const at::Tensor e = g.edges;
  ASSERT_EQ(e.size(1), 2);
  EXPECT_TRUE((e.select(1, 0) < e.select(1, 1)).all().item<bool>());
  const at::Tensor keys = e.select(1, 0) * g.num_vertices() + e.select(1, 1);
  EXPECT_TRUE((keys.narrow(0, 1, keys.size(0) - 1) > keys.narrow(0, 0, keys.size(0) - 1)).all().item<bool>());
  // Kuhn grid edges: 3 axis directions, 3 face diagonals and 1 body diagonal per cell pattern.
  const int64_t n = 3, axis = 3 * n * (n + 1) * (n + 1), face_diag = 3 * n * n * (n + 1), body = n * n * n;
  EXPECT_EQ(e.size(0), axis + face_diag + body);
  // tet_edges[t][k] joins the tet's local vertices kTetEdgeVertices[k].
  for (int k = 0; k < 6; ++k) {
    const at::Tensor ends = e.index_select(0, g.tet_edges.select(1, k).contiguous());
    const at::Tensor a = g.tets.select(1, kTetEdgeVertices[k][0]), b = g.tets.select(1, kTetEdgeVertices[k][1]);
    EXPECT_TRUE(at::equal(ends.select(1, 0), at::minimum(a, b))) << k;
    EXPECT_TRUE(at::equal(ends.select(1, 1), at::maximum(a, b))) << k;
  }
}

// kuhn_grid.h's arithmetic (what the CUDA grid kernels use instead of the tables) against MakeTetGrid's
// tables: every tet's vertices and edge ids, every edge's id from its lower end and direction, and the
// number of edges before every vertex.
TEST(TetGrid, IdArithmeticMatchesTheTables) {
  for (int64_t n : {1, 2, 3, 6}) {
    const TetGrid g = MakeTetGrid(n);
    ASSERT_TRUE(IsKuhnGrid(g)) << n;
    ASSERT_EQ(g.num_edges(), KuhnNumEdges(n)) << n;
    const int64_t s = n + 1;
    const auto tets = g.tets.accessor<int64_t, 2>(), tet_edges = g.tet_edges.accessor<int64_t, 2>();
    const auto edges = g.edges.accessor<int64_t, 2>();
    for (int64_t t = 0; t < g.num_tets(); ++t) {
      const int64_t cube = t / 6, l = t % 6;
      const int64_t ci = cube % n, cj = cube / n % n, ck = cube / (n * n);
      const int64_t base = ci + s * (cj + s * ck);
      for (int k = 0; k < 4; ++k) ASSERT_EQ(tets[t][k], base + KuhnCornerOffset(KuhnCorner(l, k), s)) << n << " " << t;
      for (int m = 0; m < 6; ++m) {
        const int a = KuhnCorner(l, kTetEdgeVertices[m][0]), b = KuhnCorner(l, kTetEdgeVertices[m][1]);
        ASSERT_EQ(a & b, std::min(a, b)) << "the lower corner's bits are a subset of the higher one's";
        const int64_t lo = base + KuhnCornerOffset(a & b, s);
        ASSERT_EQ(tet_edges[t][m], KuhnEdgeId(n, lo % s, lo / s % s, lo / (s * s), (a ^ b) - 1)) << n << " " << t;
      }
    }
    int64_t e = 0;
    for (int64_t v = 0; v < g.num_vertices(); ++v) {
      const int64_t i = v % s, j = v / s % s, k = v / (s * s);
      ASSERT_EQ(KuhnEdgesBefore(n, i, j, k), e) << n << " vertex " << v;
      const uint32_t mask = KuhnForwardMask(n, i, j, k);
      for (int d = 0; d < 7; ++d) {
        if (((mask >> d) & 1u) == 0) continue;
        ASSERT_EQ(edges[e][0], v);
        ASSERT_EQ(edges[e][1], v + KuhnDirectionOffset(d, s));
        ASSERT_EQ(KuhnEdgeId(n, i, j, k, d), e);
        ++e;
      }
    }
    EXPECT_EQ(e, g.num_edges());
  }
  TetGrid hand_built = MakeTetGrid(2);
  hand_built.resolution = 0;
  EXPECT_FALSE(IsKuhnGrid(hand_built));
  hand_built.resolution = 3;  // sizes of another N
  EXPECT_FALSE(IsKuhnGrid(hand_built));
}

// The table, checked geometrically: on random positively oriented tets with random linear sdfs that give
// each case, every triangle's vertices are zeros of the sdf, lie on the right edges, and its normal points
// along the sdf gradient (toward the outside).
TEST(MarchingTets, TableOrientationAndPlacementForEveryCase) {
  at::manual_seed(1);
  TetGrid g;
  g.vertices = at::randn({4, 3}, at::kDouble);
  if (SignedVolumes(g.vertices, at::tensor({0, 1, 2, 3}, at::kLong).view({1, 4}))[0].item<double>() < 0) {
    g.vertices = g.vertices.index_select(0, at::tensor({1, 0, 2, 3}, at::kLong));
  }
  g.tets = at::tensor({0, 1, 2, 3}, at::kLong).view({1, 4});
  std::vector<int64_t> ends;
  for (const auto& e : kTetEdgeVertices) ends.insert(ends.end(), {e[0], e[1]});
  g.edges = at::tensor(ends, at::kLong).view({6, 2});
  g.tet_edges = at::arange(6, at::kLong).view({1, 6});
  for (int trial = 0; trial < 20; ++trial) {
    // A linear sdf s(p) = w·p + c through the tet, and its values at the corners.
    const at::Tensor w = at::randn({3}, at::kDouble);
    const at::Tensor proj = at::mv(g.vertices, w);
    const double c =
        -(proj.min().item<double>() + (proj.max() - proj.min()).item<double>() * at::rand({1}).item<double>());
    const at::Tensor sdf = proj + c;
    const int cs = static_cast<int>(((sdf < 0).to(at::kLong) * at::tensor({1, 2, 4, 8})).sum().item<int64_t>());
    Mesh m = MarchingTets(g.vertices, sdf, g);
    ASSERT_EQ(m.num_faces(), kMarchingTetsTable.num_triangles[cs]) << "case " << cs;
    EXPECT_TRUE(at::allclose(at::mv(m.vertices, w) + c, at::zeros({m.num_vertices()}, at::kDouble), 1e-9, 1e-9));
    const at::Tensor n = FaceNormals(m);
    EXPECT_TRUE((at::mv(n, w) > 0).all().item<bool>()) << "case " << cs << " faces point inward";
  }
  // Every case, directly from corner values; with_zero puts vertex 2, when outside, exactly on the
  // surface (sdf = 0 counts as outside), which may make triangles degenerate but never flips them.
  for (bool with_zero : {false, true}) {
    for (int cs = 0; cs < 16; ++cs) {
      std::vector<double> s(4);
      for (int i = 0; i < 4; ++i) s[i] = (cs >> i & 1) ? -1.0 - 0.25 * i : (with_zero && i == 2 ? 0.0 : 0.5 + 0.1 * i);
      Mesh m = MarchingTets(g.vertices, at::tensor(s, at::kDouble), g);
      EXPECT_EQ(m.num_faces(), kMarchingTetsTable.num_triangles[cs]) << cs;
      // The gradient of the linear interpolant of the corner values points outward.
      const at::Tensor d = g.vertices.narrow(0, 1, 3) - g.vertices[0];
      const at::Tensor ds = at::tensor(std::vector<double>{s[1] - s[0], s[2] - s[0], s[3] - s[0]}, at::kDouble);
      const at::Tensor grad = at::linalg_solve(d, ds);
      const at::Tensor area_normals = FaceNormals(m) * FaceAreas(m).unsqueeze(1);
      if (with_zero) {
        EXPECT_TRUE((at::mv(area_normals, grad) >= -1e-12).all().item<bool>()) << cs;
      } else {
        EXPECT_TRUE((at::mv(area_normals, grad) > 0).all().item<bool>()) << cs;
      }
    }
  }
}

TEST(MarchingTets, SphereIsClosedOutwardAndHasTheRightArea) {
  const double r = 0.6;
  TetGrid g = MakeTetGrid(32);
  Mesh m = MarchingTets(g.vertices, SphereSdf(g.vertices, r), g);
  ASSERT_TRUE(ValidateMesh(m).ok()) << ValidateMesh(m);
  ASSERT_GT(m.num_faces(), 1000);
  std::string why;
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(m, &why)) << why;
  // Every vertex on an edge with a sign change: its radius is close to r (linear interpolation of |p|).
  const at::Tensor radius = m.vertices.norm(2, 1);
  EXPECT_LT((radius - r).abs().max().item<float>(), 0.5 * g.spacing());
  // Outward: every face normal agrees with the direction from the centre.
  const at::Tensor centroid = (m.vertices.index_select(0, m.faces.select(1, 0).contiguous()) +
                               m.vertices.index_select(0, m.faces.select(1, 1).contiguous()) +
                               m.vertices.index_select(0, m.faces.select(1, 2).contiguous())) /
                              3;
  EXPECT_TRUE(((FaceNormals(m) * centroid).sum(1) > 0).all().item<bool>());
  EXPECT_GT((VertexNormals(m) * m.vertices).sum(1).min().item<float>(), 0);
  const double area = TotalArea(m).item<float>(), expected = 4 * M_PI * r * r;
  EXPECT_NEAR(area / expected, 1.0, 0.02) << area << " vs " << expected;
  EXPECT_EQ(ConnectedComponents(m).count, 1);
}

TEST(MarchingTets, PlaneVerticesLandExactlyOnThePlane) {
  // sdf = z − 0.3 is linear, so interpolation is exact: every vertex has z = 0.3, the patch covers the
  // whole 2×2 cross-section, and normals point to +z (the outside).
  TetGrid g = MakeTetGrid(4);
  const at::Tensor sdf = g.vertices.select(1, 2) - 0.3f;
  Mesh m = MarchingTets(g.vertices, sdf, g);
  ASSERT_GT(m.num_faces(), 0);
  EXPECT_TRUE(at::allclose(m.vertices.select(1, 2), at::full({m.num_vertices()}, 0.3f), 0, 1e-6));
  EXPECT_TRUE(at::allclose(FaceNormals(m), at::tensor({0.f, 0.f, 1.f}).expand({m.num_faces(), 3}), 0, 1e-5));
  EXPECT_NEAR(TotalArea(m).item<float>(), 4.0, 1e-4);
  // One vertex per crossing edge, and only edges with a sign change cross.
  const at::Tensor ends = g.edges.index_select(0, MarchingTetsTopology(sdf, g).crossing_edges);
  EXPECT_TRUE(
      (sdf.index_select(0, ends.select(1, 0).contiguous()) * sdf.index_select(0, ends.select(1, 1).contiguous()) < 0)
          .all()
          .item<bool>());
  std::string why;
  EXPECT_FALSE(IsClosedAndConsistentlyOriented(m, &why));  // an open patch
}

TEST(MarchingTets, NoSignChangeGivesAnEmptyMesh) {
  TetGrid g = MakeTetGrid(3);
  for (float value : {1.0f, -1.0f, 0.0f}) {
    Mesh m = MarchingTets(g.vertices, at::full({g.num_vertices()}, value), g);
    EXPECT_EQ(m.vertices.sizes(), (at::IntArrayRef{0, 3}));
    EXPECT_EQ(m.faces.sizes(), (at::IntArrayRef{0, 3}));
  }
}

TEST(MarchingTets, TwinAndDispatchAgreeAndSdfColumnIsAccepted) {
  at::manual_seed(3);
  TetGrid g = MakeTetGrid(6);
  const at::Tensor sdf = at::randn({g.num_vertices()});
  Mesh a = MarchingTets(g.vertices, sdf, g), b = MarchingTetsTwin(g.vertices, sdf.view({-1, 1}), g);
  EXPECT_TRUE(at::equal(a.faces, b.faces));
  EXPECT_TRUE(at::equal(a.vertices, b.vertices));
  // Random sdf: many pieces, some cut by the grid boundary; each face still uses distinct vertices.
  EXPECT_TRUE(((a.faces.select(1, 0) != a.faces.select(1, 1)) & (a.faces.select(1, 1) != a.faces.select(1, 2)))
                  .all()
                  .item<bool>());
}

// Central differences of sum(weights · vertices) against autograd, in float64.
TEST(MarchingTets, GradientsMatchFiniteDifferences) {
  at::manual_seed(5);
  TetGrid g = MakeTetGrid(3);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  // Sdf values kept away from 0 so small perturbations do not change the topology.
  at::Tensor sdf = at::randn({g.num_vertices()}, f64);
  sdf = sdf + sdf.sign() * 0.2;
  at::Tensor deform = (at::rand({g.num_vertices(), 3}, f64) - 0.5) * 0.2 * g.spacing();
  const at::Tensor base = g.vertices.to(at::kDouble);
  const Mesh ref = MarchingTets(base + deform, sdf, g);
  ASSERT_GT(ref.num_faces(), 10);
  const at::Tensor weights = at::randn(ref.vertices.sizes(), f64);
  auto objective = [&](const at::Tensor& s, const at::Tensor& d) {
    Mesh m = MarchingTets(base + d, s, g);
    EXPECT_TRUE(at::equal(m.faces, ref.faces));
    return (m.vertices * weights).sum();
  };
  at::Tensor s_var = sdf.clone().requires_grad_(true), d_var = deform.clone().requires_grad_(true);
  auto grads = torch::autograd::grad({objective(s_var, d_var)}, {s_var, d_var});
  const double eps = 1e-6;
  // Entries that matter: vertices on crossing edges.
  const at::Tensor ends = g.edges.index_select(0, MarchingTetsTopology(sdf, g).crossing_edges).reshape({-1});
  const at::Tensor touched = std::get<0>(at::_unique2(ends));
  for (int i = 0; i < 8; ++i) {
    const int64_t v = touched[(i * 7919) % touched.size(0)].item<int64_t>();
    at::Tensor sp = sdf.clone(), sm = sdf.clone();
    sp[v].add_(eps);
    sm[v].sub_(eps);
    const double fd = (objective(sp, deform) - objective(sm, deform)).item<double>() / (2 * eps);
    EXPECT_NEAR(grads[0][v].item<double>(), fd, 1e-6 * (1 + std::fabs(fd))) << "sdf " << v;
    const int axis = i % 3;
    at::Tensor dp = deform.clone(), dm = deform.clone();
    dp[v][axis].add_(eps);
    dm[v][axis].sub_(eps);
    const double fd2 = (objective(sdf, dp) - objective(sdf, dm)).item<double>() / (2 * eps);
    EXPECT_NEAR(grads[1][v][axis].item<double>(), fd2, 1e-6 * (1 + std::fabs(fd2))) << "deformation " << v;
  }
  // Vertices away from the surface get no gradient.
  EXPECT_EQ(grads[0].ne(0).sum().item<int64_t>() <= touched.size(0), true);
}

TEST(MarchingTets, BadInputsFailClearly) {
  TetGrid g = MakeTetGrid(2);
  at::Tensor sdf = SphereSdf(g.vertices, 0.5);
  at::Tensor bad = sdf.clone();
  bad[3].fill_(NAN);
  bad[5].fill_(INFINITY);
  try {
    MarchingTets(g.vertices, bad, g);
    FAIL() << "NaN sdf accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sdf has 1 NaN and 1 infinite values"), std::string::npos) << e.what();
  }
  at::Tensor bad_positions = g.vertices.clone();
  bad_positions[2][1].fill_(NAN);
  bad_positions[2][2].fill_(INFINITY);  // one vertex: counted as NaN
  bad_positions[4][0].fill_(-INFINITY);
  try {
    MarchingTets(bad_positions, sdf, g);
    FAIL() << "NaN positions accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("positions has 1 NaN and 1 infinite values"), std::string::npos) << e.what();
  }
  EXPECT_THROW(MarchingTetsTopology(bad, g), c10::Error);
  EXPECT_THROW(MarchingTets(g.vertices, sdf.narrow(0, 0, 10), g), c10::Error);
  EXPECT_THROW(MarchingTets(g.vertices.narrow(0, 0, 10), sdf, g), c10::Error);
  EXPECT_THROW(MarchingTets(g.vertices.to(at::kDouble), sdf, g), c10::Error);
  EXPECT_THROW(MarchingTets(g.vertices, sdf.view({-1, 1}).expand({-1, 2}), g), c10::Error);
  EXPECT_THROW(MarchingTets(g.vertices, sdf.to(at::kInt), g), c10::Error);
  EXPECT_THROW(MakeTetGrid(0), c10::Error);
  EXPECT_THROW(MakeTetGrid(4, -1.0), c10::Error);
}

TEST(DMTet, InitFromSdfExtractsASphereAndGradientsReachBothParameters) {
  DMTet dmtet({/*resolution=*/16});
  ASSERT_TRUE(dmtet.InitFromSdf([](const at::Tensor& p) { return SphereSdf(p, 0.5); }, /*chunk=*/1000).ok());
  Mesh m = dmtet.Extract();
  std::string why;
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(m, &why)) << why;
  EXPECT_NEAR(TotalArea(m).item<float>() / (4 * M_PI * 0.25), 1.0, 0.05);
  // Deformation moves vertices by at most half a cell.
  ASSERT_EQ(dmtet.Parameters().size(), 2u);
  {
    c10::NoGradGuard no_grad;
    dmtet.deformation().fill_(50.0);
  }
  EXPECT_NEAR((dmtet.Positions() - dmtet.grid().vertices).abs().max().item<float>(), 0.5 * dmtet.grid().spacing(),
              1e-6);
  {
    c10::NoGradGuard no_grad;
    dmtet.deformation().normal_(0, 0.3);
  }
  at::Tensor loss = TotalArea(dmtet.Extract());
  auto grads = torch::autograd::grad({loss}, dmtet.Parameters());
  EXPECT_GT(grads[0].abs().sum().item<float>(), 0);
  EXPECT_GT(grads[1].abs().sum().item<float>(), 0);
  // Shrinking the sphere (raising sdf everywhere) reduces the area: d(area)/d(sdf) sums to < 0.
  EXPECT_LT(grads[0].sum().item<float>(), 0);
}

TEST(DMTet, DeformationGradientMatchesFiniteDifferencesInFloat64) {
  DMTetOptions o;
  o.resolution = 4;
  o.dtype = at::kDouble;
  DMTet dmtet(o);
  ASSERT_TRUE(dmtet.InitFromSdf([](const at::Tensor& p) { return SphereSdf(p, 0.55) + 0.01; }).ok());
  {
    c10::NoGradGuard no_grad;
    at::manual_seed(9);
    dmtet.deformation().normal_(0, 0.5);
  }
  auto area = [&] { return TotalArea(dmtet.Extract()); };
  const at::Tensor grad = torch::autograd::grad({area()}, {dmtet.deformation()})[0];
  const at::Tensor ends =
      dmtet.grid().edges.index_select(0, MarchingTetsTopology(dmtet.sdf(), dmtet.grid()).crossing_edges);
  for (int i = 0; i < 5; ++i) {
    const int64_t v = ends[3 * i + 1][i % 2].item<int64_t>();
    const int axis = (i + 1) % 3;
    const double eps = 1e-6;
    double f[2];
    for (int side = 0; side < 2; ++side) {
      c10::NoGradGuard no_grad;
      dmtet.deformation()[v][axis].add_(side == 0 ? eps : -2 * eps);
      f[side] = area().item<double>();
    }
    {
      c10::NoGradGuard no_grad;
      dmtet.deformation()[v][axis].add_(eps);
    }
    const double fd = (f[0] - f[1]) / (2 * eps);
    EXPECT_NEAR(grad[v][axis].item<double>(), fd, 1e-6 * (1 + std::fabs(fd))) << v;
  }
}

TEST(DMTet, InitFromDensityThresholdsAndClamps) {
  DMTet dmtet({/*resolution=*/8});
  // A blob density: high inside radius ~0.5, so sdf = clamp(threshold − density) < 0 inside.
  auto density = [](const at::Tensor& p) { return (10.0 * (1.0 - p.pow(2).sum(1) / 0.25)).unsqueeze(1); };
  ASSERT_TRUE(dmtet.InitFromDensity(density, {/*threshold=*/0.0, /*smoothing=*/0, /*softness=*/0, /*chunk=*/100}).ok());
  const at::Tensor s = dmtet.sdf();
  EXPECT_FLOAT_EQ(s.min().item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(s.max().item<float>(), 1.0f);
  const at::Tensor r = dmtet.grid().vertices.norm(2, 1);
  EXPECT_TRUE((s.masked_select(r < 0.45) < 0).all().item<bool>());
  EXPECT_TRUE((s.masked_select(r > 0.55) > 0).all().item<bool>());
  std::string why;
  EXPECT_TRUE(IsClosedAndConsistentlyOriented(dmtet.Extract(), &why)) << why;
  EXPECT_FALSE(dmtet.sdf().grad_fn());  // a leaf: Init copied values in place
  EXPECT_TRUE(dmtet.sdf().requires_grad());
}

TEST(DMTet, SmoothingTheInitialSdfTurnsAStaircaseIntoTheSurface) {
  // A hard-edged ball (density 100 inside r = 0.6, 0 outside), like a trained NeRF's: the clamped sdf is
  // ±1, every crossing sits at an edge midpoint and the surface is a staircase of cell faces. One box
  // pass grades the values; the surface then follows the sphere more closely (radial error and area).
  const double r = 0.6;
  auto density = [r](const at::Tensor& p) { return 100.0 * (p.norm(2, 1) < r).to(at::kFloat); };
  auto errors = [&](int64_t smoothing) {
    DMTet dmtet({/*resolution=*/24});
    EXPECT_TRUE(dmtet.InitFromDensity(density, {/*threshold=*/5.0, smoothing}).ok());
    const Mesh m = dmtet.Extract();
    std::string why;
    EXPECT_TRUE(IsClosedAndConsistentlyOriented(m, &why)) << smoothing << ": " << why;
    const double radial = (m.vertices.norm(2, 1) - r).abs().mean().item<double>();
    const double area = std::fabs(TotalArea(m).item<float>() / (4 * M_PI * r * r) - 1);
    return std::make_pair(radial, area);
  };
  const auto [radial0, area0] = errors(0);
  const auto [radial1, area1] = errors(1);
  EXPECT_LT(radial1, 0.7 * radial0) << radial0 << " → " << radial1;
  EXPECT_LT(area1, area0) << area0 << " → " << area1;
  EXPECT_LT(area1, 0.05);
  DMTet dmtet({/*resolution=*/4});
  EXPECT_EQ(dmtet.InitFromDensity(density, {5.0, /*smoothing=*/-1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dmtet.InitFromDensity(density, {5.0, 0, /*softness=*/-1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dmtet.InitFromDensity(density, {5.0, 0, /*softness=*/NAN}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dmtet.InitFromDensity(density, {5.0, 0, /*softness=*/INFINITY}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dmtet.InitFromDensity(density, {/*threshold=*/0.0, 0, 2.0}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(DMTet, SoftInitPutsCrossingsOnTheDensityLevelSet) {
  // A ball with a soft edge, density 100·σ((r − |p|)/w), ramping over ~3 cells like a trained NeRF's:
  // its level set density = 5 is the sphere of radius r5 = r + w·ln(19). The clamped sdf is ±1 except
  // in a shell thinner than a cell, so crossings sit near edge midpoints; graded by tanh over ±2 of log
  // density, they follow the level set (measured: 0.0149 → 0.0019 mean radial error, cell 0.083).
  const double r = 0.5, w = 0.05, r5 = r + w * std::log(19.0);
  auto density = [&](const at::Tensor& p) { return 100.0 * at::sigmoid((r - p.norm(2, 1)) / w); };
  auto radial_error = [&](double softness) {
    DMTet dmtet({/*resolution=*/24});
    EXPECT_TRUE(dmtet.InitFromDensity(density, {/*threshold=*/5.0, /*smoothing=*/0, softness}).ok());
    const Mesh m = dmtet.Extract();
    std::string why;
    EXPECT_TRUE(IsClosedAndConsistentlyOriented(m, &why)) << softness << ": " << why;
    return (m.vertices.norm(2, 1) - r5).abs().mean().item<double>();
  };
  const double clamped = radial_error(0), soft = radial_error(2);
  EXPECT_LT(soft, 0.3 * clamped) << clamped << " → " << soft;
  EXPECT_LT(soft, 0.1 * 2.0 / 24) << "within a tenth of a cell";
  // A half-space density (a flat face along x): the soft init puts the plane where the density meets the
  // threshold, between grid planes.
  auto half_space = [](const at::Tensor& p) { return 100.0 * at::sigmoid(-(p.select(1, 0) - 0.3) / 0.05); };
  DMTet dmtet({/*resolution=*/24});
  ASSERT_TRUE(dmtet.InitFromDensity(half_space, {5.0, 0, 2}).ok());
  const double plane = 0.3 + 0.05 * std::log(19.0);
  EXPECT_LT((dmtet.Extract().vertices.select(1, 0) - plane).abs().max().item<double>(), 0.1 * 2.0 / 24);
}

TEST(DMTet, BadDensityAndStateAreRejected) {
  DMTet dmtet({/*resolution=*/4});
  auto nan_density = [](const at::Tensor& p) { return at::full({p.size(0)}, NAN, p.options()); };
  absl::Status s = dmtet.InitFromDensity(nan_density, {0.0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("NaN"), absl::string_view::npos) << s;
  s = dmtet.InitFromDensity([](const at::Tensor& p) { return p; }, {0.0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("[P] or [P,1]"), absl::string_view::npos) << s;

  DMTet other({/*resolution=*/5});
  s = dmtet.LoadState(other.State());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("resolution 4"), absl::string_view::npos) << s;
  EXPECT_EQ(dmtet.LoadState({{"sdf", dmtet.sdf()}}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(DMTet, StateRoundTripsInPlace) {
  DMTet a({/*resolution=*/4}), b({/*resolution=*/4});
  ASSERT_TRUE(a.InitFromSdf([](const at::Tensor& p) { return SphereSdf(p, 0.7); }).ok());
  {
    c10::NoGradGuard no_grad;
    a.deformation().uniform_(-1, 1);
  }
  const at::Tensor sdf_handle = b.Parameters()[0];
  ASSERT_TRUE(b.LoadState(a.State()).ok());
  EXPECT_TRUE(at::equal(sdf_handle, a.sdf()));  // the optimizer's tensor was updated, not replaced
  EXPECT_TRUE(at::equal(b.deformation(), a.deformation()));
  EXPECT_TRUE(at::equal(a.Extract().vertices, b.Extract().vertices));
  DMTetOptions fixed;
  fixed.resolution = 4;
  fixed.deformable = false;
  EXPECT_EQ(DMTet(fixed).Parameters().size(), 1u);
}

}  // namespace
}  // namespace psd3d
