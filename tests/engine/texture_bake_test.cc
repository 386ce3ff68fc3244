// Per-triangle UV atlas and texture baking: layout validity (split vertices, no overlaps, every face
// gets texels), baking a known color function and reading it back, dilation, errors.
#include "worker/mesh/texture_bake.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "worker/mesh/primitives.h"
#include "worker/mesh/uv_atlas.h"
#include "worker/render/rasterizer.h"

namespace psd3d {
namespace {

Mesh Cube() {
  Mesh m;
  m.vertices = at::tensor({-1.f, -1.f, -1.f, 1.f, -1.f, -1.f, 1.f, 1.f, -1.f, -1.f, 1.f, -1.f,  //
                           -1.f, -1.f, 1.f,  1.f, -1.f, 1.f,  1.f, 1.f, 1.f,  -1.f, 1.f, 1.f})
                   .view({8, 3}) *
               0.8;
  m.faces = at::tensor({0, 3, 2, 0, 2, 1, 4, 5, 6, 4, 6, 7, 0, 1, 5, 0, 5, 4,  //
                        2, 3, 7, 2, 7, 6, 1, 2, 6, 1, 6, 5, 0, 4, 7, 0, 7, 3},
                       at::kLong)
                .view({12, 3});
  return m;
}

Mesh Sphere(int64_t rings, int64_t segments) { return LatLongSphere(rings, segments); }

at::Tensor ColorOf(const at::Tensor& p) { return (p + 1) * 0.5; }

TEST(UvAtlas, SplitsVerticesPerFaceWithUvsInsideTheTexture) {
  Mesh cube = Cube();
  cube.colors = at::rand({8, 3});
  absl::StatusOr<Mesh> a = PerTriangleAtlas(cube, 64);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(ValidateMesh(*a).ok());
  EXPECT_EQ(a->vertices.size(0), 36);
  EXPECT_TRUE(at::equal(a->faces, at::arange(36, at::kLong).view({12, 3})));
  EXPECT_TRUE(at::equal(a->vertices, cube.vertices.index_select(0, cube.faces.reshape(-1))));
  EXPECT_TRUE(at::equal(a->colors, cube.colors.index_select(0, cube.faces.reshape(-1))));
  EXPECT_GE(a->uvs.min().item<float>(), 0.f);
  EXPECT_LE(a->uvs.max().item<float>(), 1.f);
}

TEST(UvAtlas, FacesNeverShareATexelAndEveryFaceGetsSome) {
  Mesh sphere = Sphere(8, 12);  // 168 faces
  for (int64_t size : {MinAtlasSize(sphere.num_faces()), int64_t{128}}) {
    absl::StatusOr<Mesh> a = PerTriangleAtlas(sphere, size);
    ASSERT_TRUE(a.ok()) << a.status();
    at::Tensor clip = UvToClipSpace(a->uvs);
    at::Tensor all = RasterizeTriangleIds(clip, a->faces, size, size)[0];
    for (int64_t f = 0; f < a->num_faces(); ++f) {
      // Each face alone covers exactly the texels the whole layout assigns to it: no face overlaps another.
      at::Tensor alone = RasterizeTriangleIds(clip, a->faces.narrow(0, f, 1), size, size)[0] >= 0;
      ASSERT_TRUE(at::equal(alone, all == f)) << "face " << f << " at size " << size;
      ASSERT_GE(alone.sum().item<int64_t>(), 1) << "face " << f << " at size " << size;
    }
  }
}

TEST(UvAtlas, RejectsTexturesTooSmallForTheFaces) {
  Mesh sphere = Sphere(8, 12);
  const int64_t min = MinAtlasSize(sphere.num_faces());
  absl::StatusOr<Mesh> a = PerTriangleAtlas(sphere, min - 1);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find(std::to_string(min)), std::string::npos) << a.status();
  EXPECT_TRUE(PerTriangleAtlas(sphere, min).ok());
  Mesh empty;
  empty.vertices = at::zeros({0, 3});
  empty.faces = at::zeros({0, 3}, at::kLong);
  EXPECT_FALSE(PerTriangleAtlas(empty, 64).ok());
}

TEST(TextureBake, FaceIdDilationGrowsRingsTakingTheLargestNeighbour) {
  at::Tensor ids = at::full({9, 9}, -1, at::kLong);
  ids[4][4] = 3;
  ids[4][6] = 5;
  at::Tensor d = DilateFaceIds(ids, 1);
  EXPECT_EQ((d >= 0).sum().item<int64_t>(), 15);  // two 3×3 rings that share a column
  EXPECT_EQ(d[4][5].item<int64_t>(), 5);          // between both: the larger id
  EXPECT_EQ(d[3][3].item<int64_t>(), 3);
  EXPECT_EQ(d[4][4].item<int64_t>(), 3);  // filled texels keep their id
  EXPECT_EQ(d[4][2].item<int64_t>(), -1);
  EXPECT_EQ((DilateFaceIds(ids, 2) >= 0).sum().item<int64_t>(), 35);  // 5×7
}

// Bakes (p+1)/2 and reads it back bilinearly at the corners and at random points of every face, edges
// included. The color is affine over each face and gutter texels continue their own face's plane, so
// the lookups are exact up to float error, except where the extended plane's color leaves [0,1] and
// is clamped (next to the sphere's poles).
void ExpectBakeReproducesColors(const Mesh& mesh, int64_t size, double max_err, double mean_err = 1e-5) {
  absl::StatusOr<Mesh> a = PerTriangleAtlas(mesh, size);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<at::Tensor> tex = BakeTexture(*a, size, size, ColorOf);
  ASSERT_TRUE(tex.ok()) << tex.status();
  ASSERT_EQ(tex->sizes(), (at::IntArrayRef{size, size, 3}));
  at::Tensor at_corners = SampleTexture(*tex, a->uvs);
  EXPECT_LT((at_corners - ColorOf(a->vertices)).abs().max().item<float>(), max_err);

  at::Generator g = at::detail::createCPUGenerator(5);
  const int64_t f = a->num_faces(), per = 16;
  at::Tensor bary = at::rand({f, per, 3}, g);
  bary.select(2, 0).narrow(1, 0, 4).zero_();  // a quarter of the points on an edge
  bary = bary / bary.sum(-1, true);
  auto corners = [&](const at::Tensor& t) { return t.index_select(0, a->faces.reshape(-1)).view({f, 1, 3, -1}); };
  at::Tensor uv = (bary.unsqueeze(-1) * corners(a->uvs)).sum(2).view({-1, 2});
  at::Tensor pos = (bary.unsqueeze(-1) * corners(a->vertices)).sum(2).view({-1, 3});
  at::Tensor err = (SampleTexture(*tex, uv) - ColorOf(pos)).abs();
  EXPECT_LT(err.max().item<float>(), max_err);
  EXPECT_LT(err.mean().item<float>(), mean_err);
}

TEST(TextureBake, CubeAndSphereReadBackTheBakedFunction) {
  ExpectBakeReproducesColors(Cube(), 64, 1e-4);
  ExpectBakeReproducesColors(Sphere(8, 12), 256, 3e-3);
  // At the smallest size the atlas allows (legs of ~2 texels), a gutter texel by a face's acute tip can
  // be claimed by the other half of its cell (here an adjacent face of similar color) first.
  ExpectBakeReproducesColors(Sphere(6, 8), MinAtlasSize(80), 0.03, 1e-3);
}

TEST(TextureBake, FillsEveryTexelAndRejectsBadInput) {
  absl::StatusOr<Mesh> a = PerTriangleAtlas(Cube(), 64);
  ASSERT_TRUE(a.ok());
  absl::StatusOr<at::Tensor> tex = BakeTexture(*a, 64, 64, ColorOf);
  ASSERT_TRUE(tex.ok());
  EXPECT_TRUE((tex->sum(-1) > 0).all().item<bool>());  // colors of the cube are > 0 everywhere
  EXPECT_GE(tex->min().item<float>(), 0.f);
  EXPECT_LE(tex->max().item<float>(), 1.f);

  EXPECT_EQ(BakeTexture(Cube(), 64, 64, ColorOf).status().code(), absl::StatusCode::kInvalidArgument);  // no uvs
  auto wrong = [](const at::Tensor& p) { return p.narrow(1, 0, 2); };
  EXPECT_EQ(BakeTexture(*a, 64, 64, wrong).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BakeTexture(*a, 0, 64, ColorOf).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace psd3d
