// Tiny-world renders: white background, the subject's color in the middle, batches that mix shapes
// equal one-by-one renders, and the world's cameras.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "worker/tinyworld/scene_render.h"

namespace psd3d::tinyworld {
namespace {

at::Tensor Rad(std::vector<float> deg) { return at::tensor(deg) * (M_PI / 180.0); }

TEST(SceneRender, WhiteBackgroundAndTheSubjectsColor) {
  CameraBatch cams = WorldCameras(Rad({20, 20}), Rad({30, 200}));
  at::Tensor img = RenderScenes({SubjectScene({Color::kRed, Shape::kSphere}, 0.f),
                                 SubjectScene({Color::kBlue, Shape::kCube}, 0.3f)},
                                cams);
  ASSERT_EQ(img.sizes(), (at::IntArrayRef{2, 3, 64, 64}));
  EXPECT_GE(img.min().item<float>(), 0.f);
  EXPECT_LE(img.max().item<float>(), 1.f);
  // Corners are background.
  EXPECT_TRUE(at::allclose(img.index({at::indexing::Slice(), at::indexing::Slice(), 0, 0}), at::ones({2, 3})));
  // The centre shows the albedo, shaded: red dominates red, blue dominates blue.
  at::Tensor c0 = img.index({0, at::indexing::Slice(), 32, 32}), c1 = img.index({1, at::indexing::Slice(), 32, 32});
  EXPECT_GT(c0[0].item<float>(), 2 * c0[1].item<float>()) << c0;
  EXPECT_GT(c1[2].item<float>(), 2 * c1[0].item<float>()) << c1;
  // Shading stays within [ambient, 1] × albedo: the brightest red pixel is close to the albedo.
  EXPECT_NEAR(img[0][0].max().item<float>(), 1.0f, 1e-6);  // background
  at::Tensor red = img[0][0].masked_select(img[0][1].lt(0.5));
  EXPECT_NEAR(red.max().item<float>(), ColorRgb(Color::kRed)[0], 0.05);
}

TEST(SceneRender, MixedBatchEqualsOneByOne) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  CameraBatch cams = SampleWorldCameras(4, gen);
  Scene floaters = SubjectScene({Color::kGreen, Shape::kTorus}, 0.5f);
  SceneObject blob;
  blob.shape = Shape::kSphere;
  blob.rgb = ColorRgb(Color::kGreen);
  blob.scale = 0.12f;
  blob.offset = {0.8f, 0.7f, 0.2f};
  floaters.objects.push_back(blob);
  std::vector<Scene> scenes = {SubjectScene({Color::kPink, Shape::kCone}, 1.f), floaters,
                               SubjectScene({Color::kBrown, Shape::kCone}, 2.f),
                               SubjectScene({Color::kYellow, Shape::kPyramid}, 0.f)};
  at::Tensor all = RenderScenes(scenes, cams);
  for (int i = 0; i < 4; ++i) {
    at::Tensor one = RenderScenes({scenes[i]}, cams.index(i));
    EXPECT_TRUE(at::allclose(all[i], one[0], 1e-5, 1e-5)) << i;
  }
  // The floater adds covered pixels to the plain torus.
  at::Tensor plain = RenderScenes({SubjectScene({Color::kGreen, Shape::kTorus}, 0.5f)}, cams.index(1));
  const auto covered = [](const at::Tensor& im) { return im.lt(0.95).any(0).sum().item<int64_t>(); };
  EXPECT_GT(covered(all[1]), covered(plain[0]) + 5);
}

TEST(SceneRender, YawTurnsCubesButNotSpheres) {
  CameraBatch cams = WorldCameras(Rad({15, 15}), Rad({0, 0}));
  at::Tensor spheres = RenderScenes({SubjectScene({Color::kRed, Shape::kSphere}, 0.f),
                                     SubjectScene({Color::kRed, Shape::kSphere}, 0.7f)},
                                    cams);
  at::Tensor cubes = RenderScenes({SubjectScene({Color::kRed, Shape::kCube}, 0.f),
                                   SubjectScene({Color::kRed, Shape::kCube}, 0.7f)},
                                  cams);
  EXPECT_LT((spheres[0] - spheres[1]).abs().mean().item<float>(), 2e-3);
  EXPECT_GT((cubes[0] - cubes[1]).abs().mean().item<float>(), 2e-2);
}

TEST(SceneRender, SilhouettesAndMeshRendersMatchSceneRenders) {
  CameraBatch cams = JudgeCameras();
  ASSERT_EQ(cams.size(), 8);
  const Subject s{Color::kOrange, Shape::kPyramid};
  std::vector<Scene> scenes(8, SubjectScene(s, 0.f));
  at::Tensor img = RenderScenes(scenes, cams);
  at::Tensor sil = RenderSilhouettes(s.shape, at::zeros({8}), cams);
  ASSERT_EQ(sil.sizes(), (at::IntArrayRef{8, 64, 64}));
  // Fully covered pixels are object-colored, empty ones white.
  EXPECT_TRUE(img.permute({1, 0, 2, 3}).masked_select(sil.eq(0).unsqueeze(0).expand({3, 8, 64, 64})).eq(1).all().item<bool>());
  EXPECT_TRUE(img.select(1, 2).masked_select(sil.eq(1)).lt(0.5).all().item<bool>());
  // A vertex-colored copy of the primitive renders the same as the scene (at yaw 0, so that both see
  // bit-identical vertices and break depth ties alike).
  Mesh m = ShapeMesh(s.shape);
  const Rgb rgb = ColorRgb(s.color);
  m.colors = at::tensor(std::vector<float>(rgb.begin(), rgb.end())).expand({m.num_vertices(), 3}).contiguous();
  at::Tensor coverage;
  at::Tensor mesh_img = RenderMesh(m, cams, {}, &coverage);
  EXPECT_LT((mesh_img - img).abs().max().item<float>(), 2e-3);
  EXPECT_LT((coverage - sil).abs().max().item<float>(), 1e-6);
}

TEST(SceneRender, WorldCamerasStayInRangeAndAreSeeded) {
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(3), g2 = at::make_generator<at::CPUGeneratorImpl>(3);
  CameraBatch a = SampleWorldCameras(256, g1), b = SampleWorldCameras(256, g2);
  EXPECT_TRUE(at::equal(a.mvp, b.mvp));
  const double deg = 180.0 / M_PI;
  EXPECT_GE(a.elevation.min().item<float>() * deg, kElevationMinDeg - 1e-4);
  EXPECT_LE(a.elevation.max().item<float>() * deg, kElevationMaxDeg + 1e-4);
  EXPECT_GE(a.azimuth.min().item<float>(), 0);
  EXPECT_LT(a.azimuth.max().item<float>(), 2 * M_PI);
  EXPECT_TRUE(at::allclose(a.distance, at::full({256}, kCameraDistance)));
}

}  // namespace
}  // namespace psd3d::tinyworld
