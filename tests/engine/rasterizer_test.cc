// The rasterizer (CPU twin): coverage, z-buffer, clipping, barycentrics, perspective-correct
// interpolation, gradients and the antialias pass's silhouette gradients.
#include "worker/render/rasterizer.h"

#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "worker/render/cameras.h"

namespace psd3d {
namespace {

at::Tensor Faces(std::vector<int64_t> v) { return at::tensor(v, at::kLong).view({-1, 3}); }

// [1,V,4] clip positions from NDC points (x,y,z) and per-vertex w: clip = (x·w, y·w, z·w, w).
at::Tensor ClipFromNdc(const std::vector<std::array<float, 4>>& ndc_w) {
  std::vector<float> v;
  for (const auto& p : ndc_w) {
    v.insert(v.end(), {p[0] * p[3], p[1] * p[3], p[2] * p[3], p[3]});
  }
  return at::tensor(v).view({1, -1, 4});
}

float ColNdc(int64_t c, int64_t w) { return static_cast<float>(2 * c + 1) / static_cast<float>(w) - 1.f; }
float RowNdc(int64_t r, int64_t h) { return 1.f - static_cast<float>(2 * r + 1) / static_cast<float>(h); }

// Scalar reference of the triangle-id pass: the CUDA kernel's per-pixel test (rasterizer.cu), one
// float operation at a time, over every pixel of every triangle.
at::Tensor ReferenceTriangleIds(const at::Tensor& clip, const at::Tensor& faces, int64_t h, int64_t w) {
  const int64_t b = clip.size(0), nv = clip.size(1), nf = faces.size(0);
  at::Tensor c = clip.contiguous();
  at::Tensor fc = faces.contiguous();
  const float* cp = c.data_ptr<float>();
  const int64_t* fp = fc.data_ptr<int64_t>();
  std::vector<uint64_t> keys(b * h * w, ~0ull);
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t f = 0; f < nf; ++f) {
      float x[3], y[3], z[3], ww[3];
      bool ok = true;
      for (int k = 0; k < 3; ++k) {
        const float* v = cp + (bi * nv + fp[3 * f + k]) * 4;
        x[k] = v[0], y[k] = v[1], z[k] = v[2], ww[k] = v[3];
        ok = ok && ww[k] > 0 && std::isfinite(x[k]) && std::isfinite(y[k]) && std::isfinite(z[k]) &&
             std::isfinite(ww[k]);
      }
      if (!ok) continue;
      for (int64_t r = 0; r < h; ++r) {
        for (int64_t col = 0; col < w; ++col) {
          const float fx = ColNdc(col, w), fy = RowNdc(r, h);
          float px[3], py[3];
          for (int k = 0; k < 3; ++k) {
            const float mx = fx * ww[k], my = fy * ww[k];
            px[k] = x[k] - mx;
            py[k] = y[k] - my;
          }
          auto cross = [&](int i, int j) {
            const float l = px[i] * py[j], r2 = py[i] * px[j];
            return l - r2;
          };
          const float a0 = cross(1, 2), a1 = cross(2, 0), a2 = cross(0, 1);
          const float sum = (a0 + a1) + a2;
          const bool in = (a0 >= 0 && a1 >= 0 && a2 >= 0 && sum > 0) || (a0 <= 0 && a1 <= 0 && a2 <= 0 && sum < 0);
          if (!in) continue;
          const float n0 = a0 * z[0], n1 = a1 * z[1], n2 = a2 * z[2];
          const float d0 = a0 * ww[0], d1 = a1 * ww[1], d2 = a2 * ww[2];
          const float d = ((n0 + n1) + n2) / ((d0 + d1) + d2);
          if (!(d >= -1 && d <= 1)) continue;
          uint32_t bits;
          std::memcpy(&bits, &d, 4);
          const uint32_t ord = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
          const uint64_t key = (static_cast<uint64_t>(ord) << 32) | static_cast<uint64_t>(f);
          uint64_t& slot = keys[(bi * h + r) * w + col];
          slot = std::min(slot, key);
        }
      }
    }
  }
  std::vector<int64_t> ids(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) ids[i] = keys[i] == ~0ull ? -1 : static_cast<int64_t>(keys[i] & 0xffffffffu);
  return at::tensor(ids, at::kLong).view({b, h, w});
}

// A random triangle soup: [B,V,4] clip positions with w in [0.5,2], NDC xy in about [-1.3,1.3] (some
// beyond the border), z in [-1.2,1.2] (some clipped), a few vertices behind the camera; sizes mixed.
struct Soup {
  at::Tensor clip, faces;
};
Soup RandomSoup(int64_t batch, int64_t tris, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Tensor centre = at::rand({batch, tris, 1, 2}, g) * 2.6 - 1.3;
  at::Tensor scale = at::exp(at::rand({batch, tris, 1, 1}, g) * 4.0 - 4.5);  // 0.01 .. 0.6
  at::Tensor xy = centre + (at::rand({batch, tris, 3, 2}, g) * 2 - 1) * scale;
  at::Tensor z = at::rand({batch, tris, 1, 1}, g) * 2.4 - 1.2 + (at::rand({batch, tris, 3, 1}, g) - 0.5) * 0.2;
  at::Tensor w = at::rand({batch, tris, 3, 1}, g) * 1.5 + 0.5;
  w = at::where(at::rand({batch, tris, 3, 1}, g) < 0.01, -w, w);
  at::Tensor clip = at::cat({xy * w, z * w, w}, -1).view({batch, tris * 3, 4}).to(at::kFloat);
  return {clip, at::arange(tris * 3, at::kLong).view({tris, 3})};
}

TEST(Rasterizer, SingleTriangleCoverageMatchesPointInTriangleBothWindings) {
  const int64_t h = 37, w = 53;
  const std::array<double, 3> xs = {-0.7, 0.8, 0.1}, ys = {-0.6, -0.2, 0.9};
  for (bool flip : {false, true}) {  // flip: clockwise (a back face) — rasterized too
    std::vector<std::array<float, 4>> v = {
        {-0.7f, -0.6f, 0.1f, 1.3f}, {0.8f, -0.2f, 0.2f, 0.6f}, {0.1f, 0.9f, 0.3f, 1.9f}};
    at::Tensor faces = flip ? Faces({0, 2, 1}) : Faces({0, 1, 2});
    at::Tensor ids = RasterizeTriangleIds(ClipFromNdc(v), faces, h, w);
    ASSERT_EQ(ids.sizes(), (at::IntArrayRef{1, h, w}));
    int64_t inside = 0, checked = 0;
    for (int64_t r = 0; r < h; ++r) {
      for (int64_t c = 0; c < w; ++c) {
        const double px = (2.0 * c + 1) / w - 1, py = 1 - (2.0 * r + 1) / h;
        // Screen-space barycentrics in double.
        const double det = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0]);
        const double l1 = ((px - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (py - ys[0])) / det;
        const double l2 = ((xs[1] - xs[0]) * (py - ys[0]) - (px - xs[0]) * (ys[1] - ys[0])) / det;
        const double l0 = 1 - l1 - l2;
        const double margin = std::min({l0, l1, l2});
        if (std::fabs(margin) < 1e-5) continue;  // on an edge: either answer is fine
        ++checked;
        const bool expect = margin > 0;
        inside += expect;
        EXPECT_EQ(ids[0][r][c].item<int64_t>(), expect ? 0 : -1) << "pixel " << r << "," << c << " flip " << flip;
      }
    }
    EXPECT_GT(inside, 300);
    EXPECT_GT(checked, h * w - 5);
  }
}

TEST(Rasterizer, ZBufferPicksTheNearerTriangleAndTiesGoToTheSmallerId) {
  // Two overlapping triangles; in NDC the smaller z is nearer.
  std::vector<std::array<float, 4>> v = {
      {-0.8f, -0.8f, 0.5f, 1.f}, {0.8f, -0.8f, 0.5f, 1.f}, {0.0f, 0.8f, 0.5f, 1.f},     // far
      {-0.8f, 0.8f, -0.2f, 2.f}, {0.8f, 0.8f, -0.2f, 2.f}, {0.0f, -0.8f, -0.2f, 2.f}};  // near
  at::Tensor clip = ClipFromNdc(v);
  for (bool near_first : {false, true}) {
    at::Tensor faces = near_first ? Faces({3, 4, 5, 0, 1, 2}) : Faces({0, 1, 2, 3, 4, 5});
    const int64_t near_id = near_first ? 0 : 1, far_id = 1 - near_id;
    at::Tensor ids = RasterizeTriangleIds(clip, faces, 32, 32);
    EXPECT_EQ(ids[0][16][16].item<int64_t>(), near_id);  // the centre is in both
    EXPECT_EQ(ids[0][28][16].item<int64_t>(), far_id);   // near the far one's bottom edge: only far
    EXPECT_EQ(ids[0][3][16].item<int64_t>(), near_id);   // near the top: only near
    Fragments fr = ComputeFragments(clip, faces, ids);
    EXPECT_NEAR(fr.depth[0][16][16][0].item<float>(), -0.2f, 1e-5);
    EXPECT_NEAR(fr.depth[0][28][16][0].item<float>(), 0.5f, 1e-5);
    EXPECT_EQ(fr.depth[0][0][0][0].item<float>(), 1.f);  // empty: far plane
  }
  // Equal depth: the smaller id wins wherever both cover.
  std::vector<std::array<float, 4>> tie = {{-0.8f, -0.8f, 0.f, 1.f}, {0.8f, -0.8f, 0.f, 1.f}, {0.f, 0.8f, 0.f, 1.f}};
  at::Tensor ids = RasterizeTriangleIds(ClipFromNdc(tie), Faces({0, 1, 2, 0, 2, 1}), 16, 16);
  EXPECT_EQ((ids == 1).sum().item<int64_t>(), 0);
  EXPECT_GT((ids == 0).sum().item<int64_t>(), 50);
}

TEST(Rasterizer, SkipsTrianglesBehindTheCameraAndClipsDepth) {
  std::vector<std::array<float, 4>> v = {{-0.8f, -0.8f, 0.f, 1.f}, {0.8f, -0.8f, 0.f, 1.f}, {0.f, 0.8f, 0.f, 1.f}};
  at::Tensor clip = ClipFromNdc(v);
  at::Tensor behind = clip.clone();
  behind[0][2][3] = -0.1f;  // one vertex behind the camera: the whole triangle is skipped
  EXPECT_EQ((RasterizeTriangleIds(behind, Faces({0, 1, 2}), 16, 16) >= 0).sum().item<int64_t>(), 0);
  behind[0][2][3] = 0.f;
  EXPECT_EQ((RasterizeTriangleIds(behind, Faces({0, 1, 2}), 16, 16) >= 0).sum().item<int64_t>(), 0);
  // Depth beyond the far plane on one side: only the part with z/w in [-1,1] is drawn.
  std::vector<std::array<float, 4>> slanted = {
      {-0.8f, -0.8f, 0.5f, 1.f}, {0.8f, -0.8f, 1.5f, 1.f}, {0.f, 0.8f, 1.0f, 1.f}};
  at::Tensor ids = RasterizeTriangleIds(ClipFromNdc(slanted), Faces({0, 1, 2}), 32, 32);
  Fragments fr = ComputeFragments(ClipFromNdc(slanted), Faces({0, 1, 2}), ids);
  const int64_t drawn = (ids >= 0).sum().item<int64_t>();
  EXPECT_GT(drawn, 20);
  EXPECT_LT(drawn, 250);
  EXPECT_LE(at::where(ids.unsqueeze(-1) >= 0, fr.depth, at::zeros_like(fr.depth)).max().item<float>(), 1.f);
}

TEST(Rasterizer, TwinEqualsTheKernelsScalarMathOnRandomSoupsInAnyChunking) {
  for (uint64_t seed : {1, 2, 3}) {
    Soup s = RandomSoup(2, 300, seed);
    at::Tensor ref = ReferenceTriangleIds(s.clip, s.faces, 48, 64);
    at::Tensor twin = RasterizeTriangleIdsTwin(s.clip, s.faces, 48, 64);
    at::Tensor small_chunks = RasterizeTriangleIdsTwin(s.clip, s.faces, 48, 64, /*max_pairs=*/777);
    EXPECT_TRUE(at::equal(twin, ref)) << "seed " << seed << ": " << (twin != ref).sum().item<int64_t>() << " differ";
    EXPECT_TRUE(at::equal(small_chunks, ref)) << "seed " << seed;
    EXPECT_GT((ref >= 0).sum().item<int64_t>(), 1000);
  }
}

TEST(Rasterizer, ManyTrianglesAreFast) {
  Soup s = RandomSoup(1, 5000, 9);
  at::Tensor ids = RasterizeTriangleIdsTwin(s.clip, s.faces, 256, 256);
  EXPECT_GT((ids >= 0).sum().item<int64_t>(), 10000);
}

// A camera and a few random world-space triangles inside the unit box.
struct Scene {
  at::Tensor vertices, faces, clip;
  CameraBatch cams;
};
Scene RandomScene(int64_t tris, uint64_t seed, at::ScalarType dtype = at::kFloat) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  Scene s;
  at::Tensor centre = at::rand({tris, 1, 3}, g) * 1.2 - 0.6;
  s.vertices = (centre + (at::rand({tris, 3, 3}, g) - 0.5) * 0.8).view({tris * 3, 3});
  s.faces = at::arange(tris * 3, at::kLong).view({tris, 3});
  const float deg = M_PI / 180;
  s.cams = OrbitCameras(at::tensor({25.f * deg, -10.f * deg}), at::tensor({40.f * deg, 200.f * deg}),
                        at::tensor({2.2f, 2.5f}), at::tensor({50.f * deg, 60.f * deg}));
  s.vertices = s.vertices.to(dtype);
  s.clip = ToClipSpace(s.vertices, s.cams.mvp.to(dtype));
  return s;
}

TEST(Rasterizer, BarycentricsSumToOneAndReproducePixelCentres) {
  Scene s = RandomScene(12, 5);
  const int64_t h = 48, w = 64;
  Fragments fr = Rasterize(s.clip, s.faces, h, w);
  at::Tensor cov = fr.tri_id >= 0;
  ASSERT_GT(cov.sum().item<int64_t>(), 500);
  at::Tensor sum = fr.bary.sum(-1);
  EXPECT_LT((sum - cov.to(at::kFloat)).abs().max().item<float>(), 1e-5);
  EXPECT_GE(fr.bary.min().item<float>(), -1e-6);
  EXPECT_TRUE(at::equal(fr.mask.squeeze(-1), cov.to(at::kFloat)));
  // Interpolated clip positions divided by w land on the pixel centres; z/w is the depth.
  at::Tensor p = Interpolate(s.clip, fr.tri_id, fr.bary, s.faces);  // [B,H,W,4]
  at::Tensor ww = at::where(cov, p.select(-1, 3), at::ones_like(cov, at::kFloat));
  at::Tensor fx = PixelCentresNdc(w, false, at::kFloat, at::kCPU).view({1, 1, w});
  at::Tensor fy = PixelCentresNdc(h, true, at::kFloat, at::kCPU).view({1, h, 1});
  auto err = [&](const at::Tensor& e) { return at::where(cov, e.abs(), at::zeros_like(e)).max().item<float>(); };
  EXPECT_LT(err(p.select(-1, 0) / ww - fx), 1e-4);
  EXPECT_LT(err(p.select(-1, 1) / ww - fy), 1e-4);
  EXPECT_LT(err(p.select(-1, 2) / ww - fr.depth.squeeze(-1)), 1e-4);
}

TEST(Rasterizer, PerspectiveCorrectInterpolationMatchesRayPlaneIntersection) {
  // A big quad in the plane z = 0.1, seen at a slant: world x and y interpolated per pixel must equal
  // where the pixel's ray meets the plane.
  at::Tensor verts = at::tensor({-1.f, -1.f, 0.1f, 1.f, -1.f, 0.1f, 1.f, 1.f, 0.1f, -1.f, 1.f, 0.1f}).view({4, 3});
  at::Tensor faces = Faces({0, 1, 2, 0, 2, 3});
  const float deg = M_PI / 180;
  CameraBatch cams = OrbitCameras(at::tensor({35.f * deg}), at::tensor({50.f * deg}), at::tensor({2.f}),
                                  at::tensor({60.f * deg}), /*aspect=*/80.0 / 60.0);
  const int64_t h = 60, w = 80;
  at::Tensor clip = ToClipSpace(verts, cams.mvp);
  Fragments fr = Rasterize(clip, faces, h, w);
  at::Tensor world = Interpolate(verts.unsqueeze(0), fr.tri_id, fr.bary, faces)[0];  // [H,W,3]
  Rays rays = CameraRays(cams, h, w);
  at::Tensor t = (0.1 - rays.origins[0].select(-1, 2)) / rays.directions[0].select(-1, 2);
  at::Tensor hit = rays.origins[0] + t.unsqueeze(-1) * rays.directions[0];
  at::Tensor cov = (fr.tri_id[0] >= 0).unsqueeze(-1);
  ASSERT_GT(cov.sum().item<int64_t>(), 1000);
  const float err = at::where(cov, (world - hit).abs(), at::zeros_like(hit)).max().item<float>();
  EXPECT_LT(err, 1e-4);
  // Covered exactly where the ray hits the quad (away from its border).
  at::Tensor inside = (hit.select(-1, 0).abs() < 0.98).logical_and(hit.select(-1, 1).abs() < 0.98);
  EXPECT_TRUE(at::equal(inside.logical_and(cov.squeeze(-1).logical_not()), at::zeros_like(inside)));
}

TEST(Rasterizer, InterpolationGradientsMatchFiniteDifferencesInFloat64) {
  Scene s = RandomScene(10, 11, at::kDouble);
  const int64_t h = 32, w = 32;
  at::Tensor ids = RasterizeTriangleIds(s.clip, s.faces, h, w);  // fixed: visibility is not differentiable
  ASSERT_GT((ids >= 0).sum().item<int64_t>(), 100);
  at::Generator g = at::detail::createCPUGenerator(3);
  at::Tensor attr = at::rand({1, s.vertices.size(0), 3}, g, at::kDouble);
  at::Tensor weights = at::rand({2, h, w, 3}, g, at::kDouble);
  at::Tensor dweights = at::rand({2, h, w, 1}, g, at::kDouble);
  auto loss = [&](const at::Tensor& clip, const at::Tensor& a) {
    Fragments fr = ComputeFragments(clip, s.faces, ids);
    return (Interpolate(a, ids, fr.bary, s.faces) * weights).sum() + (fr.depth * dweights).sum();
  };
  at::Tensor clip = s.clip.detach().clone().requires_grad_(true);
  at::Tensor a = attr.clone().requires_grad_(true);
  loss(clip, a).backward();
  at::Tensor gc = clip.grad(), ga = a.grad();
  ASSERT_GT(gc.abs().sum().item<double>(), 0);
  const double eps = 1e-6;
  // Central differences on every clip coordinate of a few vertices and every attribute entry of them.
  c10::NoGradGuard no_grad;
  int64_t nonzero = 0;
  for (int64_t b : {0, 1}) {
    for (int64_t v : {0, 1, 2, 4, 7, 9}) {
      for (int64_t k = 0; k < 4; ++k) {
        at::Tensor cp = s.clip.clone(), cm = s.clip.clone();
        cp[b][v][k] += eps;
        cm[b][v][k] -= eps;
        const double fd = (loss(cp, attr) - loss(cm, attr)).item<double>() / (2 * eps);
        EXPECT_NEAR(gc[b][v][k].item<double>(), fd, 1e-5 * (1 + std::fabs(fd))) << "clip " << b << "," << v << "," << k;
        nonzero += std::fabs(fd) > 1e-3;
      }
    }
  }
  EXPECT_GT(nonzero, 20);  // the checked vertices are visible
  for (int64_t v : {0, 3, 8, 13}) {
    for (int64_t k = 0; k < 3; ++k) {
      at::Tensor ap = attr.clone(), am = attr.clone();
      ap[0][v][k] += eps;
      am[0][v][k] -= eps;
      const double fd = (loss(s.clip, ap) - loss(s.clip, am)).item<double>() / (2 * eps);
      EXPECT_NEAR(ga[0][v][k].item<double>(), fd, 1e-5 * (1 + std::fabs(fd))) << "attr " << v << "," << k;
    }
  }
}

TEST(Rasterizer, GradientsReachWorldVerticesThroughTheCamera) {
  Scene s = RandomScene(6, 13);
  at::Tensor verts = s.vertices.clone().requires_grad_(true);
  at::Tensor clip = ToClipSpace(verts, s.cams.mvp);
  Fragments fr = Rasterize(clip, s.faces, 32, 32);
  at::Tensor img = Interpolate(at::rand({1, verts.size(0), 3}), fr.tri_id, fr.bary, s.faces);
  img.sum().backward();
  EXPECT_TRUE(at::isfinite(verts.grad()).all().item<bool>());
  EXPECT_GT(verts.grad().abs().sum().item<float>(), 0);
}

TEST(Rasterizer, AttributesPassedToRasterizeEqualInterpolate) {
  Scene s = RandomScene(12, 17);
  const int64_t h = 40, w = 48;
  at::Tensor attr = at::rand({2, s.vertices.size(0), 5}, at::detail::createCPUGenerator(5));
  Fragments with = Rasterize(s.clip, s.faces, h, w, attr);
  Fragments without = Rasterize(s.clip, s.faces, h, w);
  EXPECT_FALSE(without.attr.defined());
  ASSERT_TRUE(with.attr.defined());
  EXPECT_EQ(with.attr.sizes(), (at::IntArrayRef{2, h, w, 5}));
  EXPECT_TRUE(at::equal(with.attr, Interpolate(attr, without.tri_id, without.bary, s.faces)));
  EXPECT_TRUE(at::equal(with.bary, without.bary));
  // The twin entry points are the CPU path.
  Fragments twin = RasterizeTwin(s.clip, s.faces, h, w, attr);
  EXPECT_TRUE(at::equal(twin.attr, with.attr));
  EXPECT_TRUE(at::equal(ComputeFragmentsTwin(s.clip, s.faces, with.tri_id).depth, with.depth));
}

TEST(Rasterizer, ANonFiniteVertexOnFaceZeroDoesNotPoisonGradients) {
  // Empty pixels gather face 0; with a NaN vertex there, masked-out terms must not become 0·NaN.
  Scene s = RandomScene(12, 5);
  at::Tensor clip = s.clip.detach().clone();
  clip[0][0][0] = std::nanf("");
  clip = clip.requires_grad_(true);
  at::Tensor attr = at::rand({1, s.vertices.size(0), 3}).requires_grad_(true);
  Fragments fr = Rasterize(clip, s.faces, 48, 64, attr);
  ASSERT_GT((fr.tri_id >= 0).sum().item<int64_t>(), 500);
  EXPECT_TRUE(at::isfinite(fr.bary).all().item<bool>());
  (fr.attr.sum() + fr.depth.sum() + fr.bary.pow(2).sum()).backward();
  EXPECT_TRUE(at::isfinite(clip.grad()).all().item<bool>());
  EXPECT_TRUE(at::isfinite(attr.grad()).all().item<bool>());
  EXPECT_GT(clip.grad().abs().sum().item<float>(), 0.f);
}

// Σ antialiased mask of one triangle and its gradient w.r.t. the NDC vertices (w = 1).
struct AaResult {
  double sum;
  at::Tensor grad;  // [3,2]
};
AaResult AntialiasedCoverage(const at::Tensor& xy, int64_t h, int64_t w) {
  at::Tensor p = xy.clone().requires_grad_(true);
  at::Tensor clip = at::cat({p, at::zeros({3, 1}, p.options()), at::ones({3, 1}, p.options())}, 1).unsqueeze(0);
  Fragments fr = Rasterize(clip, Faces({0, 1, 2}), h, w);
  at::Tensor aa = Antialias(fr.mask, fr, clip, Faces({0, 1, 2}));
  at::Tensor sum = aa.sum();
  sum.backward();
  return {sum.item<double>(), p.grad()};
}

TEST(Rasterizer, AntialiasGivesSilhouetteGradientsThatFollowTheArea) {
  const int64_t h = 64, w = 80;
  for (bool flip : {false, true}) {
    at::Tensor xy = at::tensor({-0.62, -0.55, 0.71, -0.31, -0.05, 0.67}, at::kDouble).view({3, 2});
    if (flip) xy = xy.index_select(0, at::tensor({0, 2, 1}, at::kLong));
    AaResult r = AntialiasedCoverage(xy, h, w);
    // Area in pixels and its gradient, analytically (|cross|/2 scaled to pixels).
    at::Tensor q = xy.clone().requires_grad_(true);
    at::Tensor e0 = q[1] - q[0], e1 = q[2] - q[0];
    at::Tensor area = (e0[0] * e1[1] - e0[1] * e1[0]).abs() * 0.5 * (0.5 * w) * (0.5 * h);
    area.backward();
    at::Tensor ga = q.grad();
    EXPECT_NEAR(r.sum, area.item<double>(), 0.005 * area.item<double>());
    const double cosine = (r.grad * ga).sum().item<double>() / (r.grad.norm() * ga.norm()).item<double>();
    EXPECT_GT(cosine, 0.995) << r.grad << ga;
    EXPECT_NEAR(r.grad.norm().item<double>(), ga.norm().item<double>(), 0.05 * ga.norm().item<double>());
    // Moving the right-most vertex right and the top vertex up grows the coverage.
    const int64_t right = flip ? 2 : 1, top = flip ? 1 : 2;
    EXPECT_GT(r.grad[right][0].item<double>(), 0);
    EXPECT_GT(r.grad[top][1].item<double>(), 0);
    EXPECT_LT(r.grad[0][0].item<double>(), 0);  // the left vertex moves left to grow
    // And a finite step agrees with the gradient's sign and rough size.
    at::Tensor step = at::zeros({3, 2}, at::kDouble);
    step[right][0] = 0.02;
    const double grown = AntialiasedCoverage(xy + step, h, w).sum;
    EXPECT_GT(grown, r.sum);
    EXPECT_NEAR(grown - r.sum, 0.02 * r.grad[right][0].item<double>(), 0.3 * 0.02 * r.grad[right][0].item<double>());
  }
}

TEST(Rasterizer, AntialiasLeavesInteriorEdgesAndInteriorPixelsAlone) {
  // A quad of two triangles sharing a diagonal, colored by triangle: the shared edge is no silhouette.
  at::Tensor clip =
      ClipFromNdc({{-0.7f, -0.6f, 0.f, 1.f}, {0.6f, -0.7f, 0.f, 1.f}, {0.7f, 0.6f, 0.f, 1.f}, {-0.6f, 0.7f, 0.f, 1.f}});
  at::Tensor faces = Faces({0, 1, 2, 0, 2, 3});
  const int64_t h = 40, w = 40;
  Fragments fr = Rasterize(clip, faces, h, w);
  at::Tensor color = at::stack({(fr.tri_id == 0).to(at::kFloat), (fr.tri_id == 1).to(at::kFloat)}, -1);
  at::Tensor aa = Antialias(color, fr, clip, faces);
  // Pixels whose 4 neighbours are all covered are untouched, including those along the diagonal.
  at::Tensor cov = fr.tri_id >= 0;
  at::Tensor pad = at::constant_pad_nd(cov.to(at::kFloat), {1, 1, 1, 1}) > 0;
  at::Tensor inner = cov.logical_and(pad.narrow(1, 0, h).narrow(2, 1, w))
                         .logical_and(pad.narrow(1, 2, h).narrow(2, 1, w))
                         .logical_and(pad.narrow(1, 1, h).narrow(2, 0, w))
                         .logical_and(pad.narrow(1, 1, h).narrow(2, 2, w));
  at::Tensor diff = (aa - color).abs().sum(-1);
  EXPECT_EQ(at::where(inner, diff, at::zeros_like(diff)).max().item<float>(), 0.f);
  EXPECT_GT(diff.sum().item<float>(), 1.f);  // the outline is blended
  // The total antialiased coverage is close to the quad's area in pixels.
  const double area = 0.5 * std::fabs((1.4 * 1.4 - (-1.2) * (1.2)));  // shoelace of the diagonals
  EXPECT_NEAR(aa.sum().item<float>(), area * (0.5 * w) * (0.5 * h), 0.03 * area * 400);
}

TEST(Rasterizer, UvSpaceMapsTheTopLeftCornerToRowZero) {
  // A UV triangle in the top-left quarter covers texels of the first rows and columns only.
  at::Tensor uv = at::tensor({0.f, 0.f, 0.5f, 0.f, 0.f, 0.5f}).view({3, 2});
  at::Tensor ids = RasterizeTriangleIds(UvToClipSpace(uv), Faces({0, 1, 2}), 8, 8)[0];
  EXPECT_EQ(ids[0][0].item<int64_t>(), 0);
  EXPECT_EQ(ids[3][0].item<int64_t>(), 0);
  EXPECT_EQ(ids[0][3].item<int64_t>(), 0);
  EXPECT_EQ(ids[4][0].item<int64_t>(), -1);
  EXPECT_EQ(ids[0][4].item<int64_t>(), -1);
  EXPECT_EQ(ids[7][7].item<int64_t>(), -1);
  EXPECT_EQ((ids == 0).sum().item<int64_t>(), 10);  // 4+3+2+1 texel centres below the diagonal
}

}  // namespace
}  // namespace psd3d
