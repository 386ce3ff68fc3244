// Volume rendering: compositing math and gradients, rendering of an analytic field, occupancy
// skipping, shading.
#include <gtest/gtest.h>

#include <cmath>

#include "worker/render/shading.h"
#include "worker/render/volume_renderer.h"

namespace psd3d {
namespace {

struct Inputs {
  at::Tensor sigma, delta, t, rgb;
};
Inputs RandomInputs(int64_t rays, int64_t samples, at::ScalarType dtype, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  auto o = at::TensorOptions().dtype(dtype);
  Inputs in;
  in.sigma = at::rand({rays, samples}, g, o) * 4.0;
  in.delta = at::rand({rays, samples}, g, o) * 0.2 + 0.05;
  in.t = at::cumsum(in.delta, 1);
  in.rgb = at::rand({rays, samples, 3}, g, o);
  return in;
}

TEST(Composite, SimpleCases) {
  // One sample of huge density: its color, full opacity, its depth.
  at::Tensor sigma = at::tensor({0.f, 1e4f, 0.f}).view({1, 3});
  at::Tensor delta = at::full({1, 3}, 0.1f), t = at::tensor({1.f, 2.f, 3.f}).view({1, 3});
  at::Tensor rgb = at::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f}).view({1, 3, 3});
  Composite c = CompositeTwin(sigma, delta, t, rgb);
  EXPECT_TRUE(at::allclose(c.color, at::tensor({0.f, 1.f, 0.f}).view({1, 3}), 1e-5, 1e-5)) << c.color;
  EXPECT_NEAR(c.opacity.item<float>(), 1.0, 1e-5);
  EXPECT_NEAR(c.depth.item<float>(), 2.0, 1e-5);
  // Uniform density: opacity 1 − exp(−σ·length), Beer–Lambert.
  sigma = at::full({1, 50}, 2.0f);
  delta = at::full({1, 50}, 0.01f);
  c = CompositeTwin(sigma, delta, at::cumsum(delta, 1), at::rand({1, 50, 3}));
  EXPECT_NEAR(c.opacity.item<float>(), 1 - std::exp(-2.0 * 0.5), 1e-5);
}

// Analytic gradients (autograd through the twin) against central differences, float64.
TEST(Composite, GradientsMatchFiniteDifferences) {
  Inputs in = RandomInputs(3, 9, at::kDouble, 11);
  at::Generator g = at::detail::createCPUGenerator(12);
  auto o = at::TensorOptions().dtype(at::kDouble);
  at::Tensor a = at::randn({3, 3}, g, o), b = at::randn({3}, g, o), d = at::randn({3}, g, o), e = at::randn({3, 9}, g, o);
  auto loss = [&](const at::Tensor& sigma, const at::Tensor& rgb) {
    Composite c = CompositeTwin(sigma, in.delta, in.t, rgb);
    return (c.color * a).sum() + (c.opacity * b).sum() + (c.depth * d).sum() + (c.weights * e).sum();
  };
  at::Tensor sigma = in.sigma.clone().requires_grad_(true), rgb = in.rgb.clone().requires_grad_(true);
  loss(sigma, rgb).backward();
  const double h = 1e-6;
  for (int64_t i = 0; i < sigma.numel(); i += 2) {
    at::Tensor p = in.sigma.clone(), m = in.sigma.clone();
    p.view({-1})[i] += h;
    m.view({-1})[i] -= h;
    double fd = (loss(p, in.rgb).item<double>() - loss(m, in.rgb).item<double>()) / (2 * h);
    EXPECT_NEAR(sigma.grad().view({-1})[i].item<double>(), fd, 1e-6 * (1 + std::fabs(fd))) << "sigma " << i;
  }
  for (int64_t i = 0; i < rgb.numel(); i += 5) {
    at::Tensor p = in.rgb.clone(), m = in.rgb.clone();
    p.view({-1})[i] += h;
    m.view({-1})[i] -= h;
    double fd = (loss(in.sigma, p).item<double>() - loss(in.sigma, m).item<double>()) / (2 * h);
    EXPECT_NEAR(rgb.grad().view({-1})[i].item<double>(), fd, 1e-6 * (1 + std::fabs(fd))) << "rgb " << i;
  }
}

// A red ball of radius 0.5 with high density.
FieldSample Ball(const at::Tensor& p) {
  at::Tensor inside = (p.norm(2, -1) < 0.5).to(at::kFloat);
  FieldSample f;
  f.density = inside * 200.0;
  f.albedo = at::tensor({1.f, 0.f, 0.f}).expand({p.size(0), 3});
  return f;
}

TEST(VolumeRender, BallOverWhiteBackground) {
  CameraBatch cam = OrbitCameras(at::tensor({0.3f}), at::tensor({1.0f}), at::tensor({2.0f}), at::tensor({0.8f}));
  VolumeRenderOptions o;
  o.height = o.width = 24;
  o.samples_per_ray = 128;
  o.stratified = false;
  VolumeRender r = RenderVolume(Ball, cam, o);
  ASSERT_EQ(r.rgb.sizes(), (at::IntArrayRef{1, 24, 24, 3}));
  at::Tensor centre = r.rgb[0].narrow(0, 11, 2).narrow(1, 11, 2).mean(at::IntArrayRef{0, 1});
  EXPECT_TRUE(at::allclose(centre, at::tensor({1.f, 0.f, 0.f}), 1e-2, 1e-2)) << centre;
  EXPECT_NEAR(r.opacity[0][12][12][0].item<float>(), 1.0, 1e-3);
  EXPECT_NEAR(r.depth[0][12][12][0].item<float>(), 1.5, 0.03);  // camera at 2, ball surface at 0.5
  EXPECT_TRUE(at::allclose(r.rgb[0][0][0], at::ones({3}), 1e-4, 1e-4)) << r.rgb[0][0][0];  // corner: background
  EXPECT_NEAR(r.opacity[0][0][0][0].item<float>(), 0.0, 1e-4);
}

TEST(VolumeRender, OccupancyGridSkipsEmptySpaceWithoutChangingTheImage) {
  CameraBatch cam = OrbitCameras(at::tensor({0.2f}), at::tensor({-0.4f}), at::tensor({2.0f}), at::tensor({0.8f}));
  VolumeRenderOptions o;
  o.height = o.width = 20;
  o.samples_per_ray = 96;
  o.stratified = false;
  OccupancyGrid grid(1.0, 16);
  at::Generator g = at::detail::createCPUGenerator(3);
  grid.Update([](const at::Tensor& p) { return Ball(p).density; }, 2.0 / 96, g);
  // The ball fills 6.5% of the cube; cells touching it are occupied (more than its volume, less than all).
  EXPECT_GT(grid.occupied_fraction(), 0.03);
  EXPECT_LT(grid.occupied_fraction(), 0.2);
  int64_t evaluated = 0;
  FieldFn counting = [&](const at::Tensor& p) {
    evaluated += p.size(0);
    return Ball(p);
  };
  VolumeRender full = RenderVolume(counting, cam, o);
  const int64_t all = evaluated;
  evaluated = 0;
  o.occupancy = &grid;
  VolumeRender skipped = RenderVolume(counting, cam, o);
  EXPECT_LT(evaluated, all / 3) << evaluated << " of " << all;
  // Jittered cell probes can miss the ball's rim, so a few edge pixels may differ slightly.
  EXPECT_LT((full.rgb - skipped.rgb).abs().mean().item<float>(), 0.01);
}

TEST(Shading, LambertianAndNormalModes) {
  at::Tensor albedo = at::full({1, 2, 3}, 0.5f);
  at::Tensor normal = at::tensor({0.f, 0.f, 2.f, 0.f, 0.f, -1.f}).view({1, 2, 3});
  Lighting light;
  light.direction = at::tensor({0.f, 0.f, 1.f}).view({1, 3});
  at::Tensor lit = Shade(albedo, normal, light, ShadingMode::kLambertian);
  EXPECT_NEAR(lit[0][0][0].item<float>(), 0.5 * (0.1 + 0.9), 1e-6);  // facing the light
  EXPECT_NEAR(lit[0][1][0].item<float>(), 0.5 * 0.1, 1e-6);          // facing away: ambient only
  at::Tensor n = Shade(albedo, normal, light, ShadingMode::kNormal);
  EXPECT_TRUE(at::allclose(n[0][0], at::tensor({0.5f, 0.5f, 1.f})));
  at::Tensor grey = Shade(albedo, normal, light, ShadingMode::kTextureless);
  EXPECT_NEAR(grey[0][0][1].item<float>(), 0.7, 1e-6);
  at::Generator g = at::detail::createCPUGenerator(1);
  CameraBatch cam = OrbitCameras(at::tensor({0.f}), at::tensor({0.f}), at::tensor({2.f}), at::tensor({0.8f}));
  Lighting near_camera = CameraLights(cam, g);
  EXPECT_GT(near_camera.direction[0][2].item<float>(), 0.5);  // roughly toward the camera on +z
}

}  // namespace
}  // namespace psd3d
