// Cameras follow the documented world convention (docs/engine.md).
#include <gtest/gtest.h>

#include <cmath>

#include "worker/render/cameras.h"

namespace psd3d {
namespace {

at::Tensor Deg(std::initializer_list<float> v) { return at::tensor(std::vector<float>(v)) * (M_PI / 180.0); }

TEST(Cameras, OrbitPositionsFollowTheConvention) {
  // azimuth 0 → +z, 90° → +x; elevation 90° → +y.
  auto c = OrbitCameras(Deg({0, 0, 0}), Deg({0, 90, 0}), at::tensor({2.f, 2.f, 2.f}), Deg({60, 60, 60}));
  auto p = c.position;
  EXPECT_TRUE(at::allclose(p[0], at::tensor({0.f, 0.f, 2.f}), 1e-5, 1e-5)) << p;
  EXPECT_TRUE(at::allclose(p[1], at::tensor({2.f, 0.f, 0.f}), 1e-5, 1e-5)) << p;
  // Cameras look at the origin: the origin is straight ahead, on camera −z, at the image centre.
  at::Tensor origin = at::tensor({0.f, 0.f, 0.f, 1.f});
  for (int i = 0; i < 2; ++i) {
    at::Tensor cam = at::matmul(c.w2c[i], origin);
    EXPECT_NEAR(cam[0].item<float>(), 0, 1e-5);
    EXPECT_NEAR(cam[1].item<float>(), 0, 1e-5);
    EXPECT_NEAR(cam[2].item<float>(), -2, 1e-5);
  }
  // The world's +y projects upward on screen (clip y > 0) for a camera on the equator.
  at::Tensor clip = at::matmul(c.mvp[0], at::tensor({0.f, 0.5f, 0.f, 1.f}));
  EXPECT_GT((clip[1] / clip[3]).item<float>(), 0);
  // +x is to the right for the camera on +z.
  clip = at::matmul(c.mvp[0], at::tensor({0.5f, 0.f, 0.f, 1.f}));
  EXPECT_GT((clip[0] / clip[3]).item<float>(), 0);
  // Depth maps into [-1, 1].
  clip = at::matmul(c.mvp[0], origin);
  float z = (clip[2] / clip[3]).item<float>();
  EXPECT_GT(z, -1);
  EXPECT_LT(z, 1);
}

TEST(Cameras, PolesGiveValidFrames) {
  auto c = OrbitCameras(Deg({90, -90}), Deg({0, 30}), at::tensor({1.5f, 1.5f}), Deg({50, 50}));
  EXPECT_TRUE(at::isfinite(c.c2w).all().item<bool>());
  at::Tensor rot = c.c2w.narrow(1, 0, 3).narrow(2, 0, 3);
  at::Tensor eye = at::eye(3).expand({2, 3, 3});
  EXPECT_TRUE(at::allclose(at::matmul(rot.transpose(1, 2), rot), eye, 1e-5, 1e-5));
}

TEST(Cameras, RaysPassThroughPixelCentresAndTheCentreRayHitsTheOrigin) {
  auto c = OrbitCameras(Deg({20}), Deg({-35}), at::tensor({1.8f}), Deg({60}), /*aspect=*/6.0 / 4.0);
  Rays r = CameraRays(c, 4, 6);
  ASSERT_EQ(r.directions.sizes(), (at::IntArrayRef{1, 4, 6, 3}));
  EXPECT_TRUE(at::allclose(r.directions.norm(2, -1), at::ones({1, 4, 6}), 1e-5, 1e-5));
  // Average of the four central pixel rays points at the origin.
  at::Tensor mid = r.directions[0].narrow(0, 1, 2).narrow(1, 2, 2).mean(at::IntArrayRef{0, 1});
  at::Tensor to_origin = -c.position[0] / c.position[0].norm();
  EXPECT_TRUE(at::allclose(mid / mid.norm(), to_origin, 1e-4, 1e-4)) << mid << to_origin;
  // Row 0 is the top: its rays point more upward (in camera y) than the last row's.
  at::Tensor up = c.c2w[0].narrow(0, 0, 3).select(1, 1);
  EXPECT_GT(at::dot(r.directions[0][0][0], up).item<float>(), at::dot(r.directions[0][3][0], up).item<float>());
  // Projecting a point along a ray lands in that pixel.
  at::Tensor p = r.origins[0][1][4] + 1.3 * r.directions[0][1][4];
  at::Tensor clip = at::matmul(c.mvp[0], at::cat({p, at::ones({1})}));
  float px = ((clip[0] / clip[3]).item<float>() + 1) * 0.5f * 6 - 0.5f;
  float py = (1 - (clip[1] / clip[3]).item<float>()) * 0.5f * 4 - 0.5f;
  EXPECT_NEAR(px, 4, 1e-3);
  EXPECT_NEAR(py, 1, 1e-3);
}

TEST(Cameras, SampledGroupsAreFourViewsNinetyDegreesApartAndDeterministic) {
  ViewRanges r;
  r.views_per_group = 4;
  at::Generator g1 = at::detail::createCPUGenerator(7), g2 = at::detail::createCPUGenerator(7);
  CameraBatch a = SampleCameras(r, 8, g1), b = SampleCameras(r, 8, g2);
  EXPECT_TRUE(at::equal(a.c2w, b.c2w));
  for (int g = 0; g < 2; ++g) {
    for (int k = 1; k < 4; ++k) {
      EXPECT_FLOAT_EQ(a.elevation[4 * g + k].item<float>(), a.elevation[4 * g].item<float>());
      double d = a.azimuth[4 * g + k].item<float>() - a.azimuth[4 * g].item<float>();
      d = std::remainder(d, 2 * M_PI);
      EXPECT_NEAR(std::fabs(std::remainder(d - k * M_PI / 2, 2 * M_PI)), 0, 1e-4);
    }
  }
  EXPECT_GE(a.elevation.min().item<float>(), -10 * M_PI / 180 - 1e-6);
  EXPECT_LE(a.elevation.max().item<float>(), 45 * M_PI / 180 + 1e-6);
}

}  // namespace
}  // namespace psd3d
