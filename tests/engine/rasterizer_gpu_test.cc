// CUDA rasterizer vs the LibTorch twin: triangle ids on random soups and meshes (equal but for depth
// ties), the fused fragment kernel (barycentrics, depth, mask, interpolation) and its gradients,
// antialias values and gradients, and texture baking on the GPU.
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "worker/mesh/primitives.h"
#include "worker/mesh/texture_bake.h"
#include "worker/mesh/uv_atlas.h"
#include "worker/render/cameras.h"
#include "worker/render/rasterizer.h"

namespace psd3d {
namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

const at::Device kCuda("cuda");

struct Soup {
  at::Tensor clip, faces;
};

// Random triangles with sizes log-uniform in [e^lo, e^hi] NDC (sub-pixel to larger than the screen, so
// both kernel paths run), some off-screen, some with clipped depth, some behind the camera, some
// collinear, one with a NaN, and every tenth a copy of its predecessor in reverse order (a tie but for
// rounding, and the opposite winding).
Soup RandomSoup(int64_t batch, int64_t tris, uint64_t seed, double lo = -5.5, double hi = 0.5) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Tensor centre = at::rand({batch, tris, 1, 2}, g) * 2.6 - 1.3;
  at::Tensor scale = at::exp(at::rand({batch, tris, 1, 1}, g) * (hi - lo) + lo);
  at::Tensor xy = centre + (at::rand({batch, tris, 3, 2}, g) * 2 - 1) * scale;
  at::Tensor collinear = at::rand({batch, tris, 1, 1}, g) < 0.02;
  at::Tensor line = xy.narrow(2, 0, 1) + at::rand({batch, tris, 3, 1}, g) * scale * at::tensor({1.f, 0.5f});
  xy = at::where(collinear, line, xy);
  at::Tensor z = at::rand({batch, tris, 1, 1}, g) * 2.4 - 1.2 + (at::rand({batch, tris, 3, 1}, g) - 0.5) * 0.2;
  at::Tensor w = at::rand({batch, tris, 3, 1}, g) * 1.5 + 0.5;
  w = at::where(at::rand({batch, tris, 3, 1}, g) < 0.01, -w, w);
  at::Tensor clip = at::cat({xy * w, z * w, w}, -1).view({batch, tris * 3, 4}).to(at::kFloat);
  clip[0][0][0] = std::nanf("");
  at::Tensor faces = at::arange(tris * 3, at::kLong).view({tris, 3});
  for (int64_t f = 9; f < tris; f += 10) faces[f] = faces[f - 1].flip(0);
  return {clip, faces};
}

// Latitude-longitude sphere (shared edges, watertight) seen by one or two cameras.
Soup SphereInView(int64_t n, int64_t batch) {
  const Mesh sphere = LatLongSphere(n, 2 * n);
  const float deg = M_PI / 180;
  std::vector<float> el = {20.f * deg, -15.f * deg}, az = {30.f * deg, 250.f * deg}, dist = {2.5f, 2.2f},
                     fov = {50.f * deg, 60.f * deg};
  el.resize(batch), az.resize(batch), dist.resize(batch), fov.resize(batch);
  CameraBatch cams = OrbitCameras(at::tensor(el), at::tensor(az), at::tensor(dist), at::tensor(fov));
  return {ToClipSpace(sphere.vertices, cams.mvp), sphere.faces};
}

// Kernel ids equal the CPU twin's wherever the two candidates' depths differ by more than a tie.
void ExpectIdsMatch(const Soup& s, int64_t h, int64_t w, const std::string& what) {
  at::Tensor ref = RasterizeTriangleIdsTwin(s.clip, s.faces, h, w);
  at::Tensor kernel = RasterizeTriangleIds(s.clip.to(kCuda), s.faces.to(kCuda), h, w).cpu();
  at::Tensor twin_cuda = RasterizeTriangleIdsTwin(s.clip.to(kCuda), s.faces.to(kCuda), h, w).cpu();
  ASSERT_EQ(kernel.sizes(), ref.sizes());
  EXPECT_GT((ref >= 0).sum().item<int64_t>(), h * w / 10) << what;
  for (const auto& [name, ids] : {std::pair<const char*, at::Tensor>{"kernel", kernel}, {"cuda twin", twin_cuda}}) {
    at::Tensor differ = ids != ref;
    const int64_t n = differ.sum().item<int64_t>();
    if (n == 0) continue;
    // Both must cover the pixel, with depths that tie.
    EXPECT_TRUE((ids.masked_select(differ) >= 0).all().item<bool>()) << what << " " << name;
    EXPECT_TRUE((ref.masked_select(differ) >= 0).all().item<bool>()) << what << " " << name;
    at::Tensor d_ref = ComputeFragments(s.clip, s.faces, ref).depth.squeeze(-1);
    at::Tensor d_ids = ComputeFragments(s.clip, s.faces, at::where(ids >= 0, ids, ref)).depth.squeeze(-1);
    const float gap = (d_ref - d_ids).abs().masked_select(differ).max().item<float>();
    EXPECT_LT(gap, 1e-6) << what << " " << name << ": " << n << " pixels differ";
    EXPECT_LT(n, h * w * ref.size(0) / 1000) << what << " " << name;
  }
}

TEST(RasterizerGpu, KernelTriangleIdsMatchTheTwinOnRandomSoups) {
  SKIP_WITHOUT_CUDA();
  ExpectIdsMatch(RandomSoup(1, 200, 1), 64, 64, "200 tris 64x64");
  ExpectIdsMatch(RandomSoup(2, 3000, 2, -5.5, -1.0), 96, 128, "3000 tris 96x128 b2");
  ExpectIdsMatch(RandomSoup(1, 20000, 3, -6.0, -2.0), 256, 256, "20k tris 256x256");
  ExpectIdsMatch(RandomSoup(3, 500, 4), 1, 300, "one row");
  ExpectIdsMatch(RandomSoup(1, 50, 5, -1.0, 0.5), 333, 17, "few big tris, tall");
}

TEST(RasterizerGpu, KernelTriangleIdsMatchTheTwinOnMeshes) {
  SKIP_WITHOUT_CUDA();
  ExpectIdsMatch(SphereInView(12, 2), 64, 80, "small sphere");
  ExpectIdsMatch(SphereInView(224, 2), 512, 512, "200k-face sphere 512x512");
  // Two coplanar copies of one mesh: every covered pixel is an exact tie, the smaller id must win.
  Soup s = SphereInView(16, 1);
  Soup twice{s.clip, at::cat({s.faces, s.faces}, 0)};
  at::Tensor ids = RasterizeTriangleIds(twice.clip.to(kCuda), twice.faces.to(kCuda), 64, 64).cpu();
  EXPECT_LT(ids.max().item<int64_t>(), s.faces.size(0));
  ExpectIdsMatch(twice, 64, 64, "coplanar duplicates");
}

// Enough triangles that the small-triangle kernel walks the big-triangle list itself (its grid has more
// blocks than the big-triangle kernel would), with big triangles spread over its blocks: every block
// may append to the list while others claim from it.
TEST(RasterizerGpu, KernelTriangleIdsMatchTheTwinWhenTheSmallKernelWalksBigTriangles) {
  SKIP_WITHOUT_CUDA();
  const Soup tiny = RandomSoup(1, 90000, 8, -7.0, -3.5), big = RandomSoup(1, 300, 9, -1.5, 0.5);
  at::Tensor faces = at::cat({tiny.faces, big.faces + tiny.clip.size(1)}, 0);
  at::Generator g = at::detail::createCPUGenerator(10);
  faces = faces.index_select(0, at::randperm(faces.size(0), g, at::kLong));
  ExpectIdsMatch({at::cat({tiny.clip, big.clip}, 1), faces}, 192, 256, "90k tiny + 300 big tris, shuffled");
}

TEST(RasterizerGpu, AcceptsInt32FacesAndNonContiguousClip) {
  SKIP_WITHOUT_CUDA();
  Soup s = RandomSoup(2, 400, 7);
  at::Tensor ref = RasterizeTriangleIdsTwin(s.clip, s.faces, 48, 48);
  at::Tensor strided = at::cat({s.clip, s.clip}, -1).to(kCuda).narrow(-1, 0, 4);  // non-contiguous view
  ASSERT_FALSE(strided.is_contiguous());
  at::Tensor ids = RasterizeTriangleIds(strided, s.faces.to(kCuda).to(at::kInt), 48, 48).cpu();
  EXPECT_TRUE(at::equal(ids, ref));
  // A contiguous clip that starts 4 bytes into its storage (the kernels read 16-byte vertices).
  at::Tensor shifted = at::cat({at::zeros({1}), s.clip.reshape(-1)}).to(kCuda).narrow(0, 1, s.clip.numel());
  ids = RasterizeTriangleIds(shifted.view(s.clip.sizes()), s.faces.to(kCuda), 48, 48).cpu();
  EXPECT_TRUE(at::equal(ids, ref));
  Fragments fr = Rasterize(shifted.view(s.clip.sizes()), s.faces.to(kCuda), 48, 48);
  EXPECT_TRUE(at::equal(fr.tri_id.cpu(), ref));
  // Degenerate inputs: no faces, one pixel.
  EXPECT_TRUE(
      (RasterizeTriangleIds(s.clip.to(kCuda), at::zeros({0, 3}, at::kLong).to(kCuda), 8, 8) == -1).all().item<bool>());
  EXPECT_EQ(RasterizeTriangleIds(s.clip.to(kCuda), s.faces.to(kCuda), 1, 1).numel(), 2);
}

TEST(RasterizerGpu, FragmentsInterpolationAndAntialiasMatchTheCpuWithGradients) {
  SKIP_WITHOUT_CUDA();
  Soup s = SphereInView(20, 2);
  const int64_t h = 96, w = 128;
  at::Tensor ids = RasterizeTriangleIdsTwin(s.clip, s.faces, h, w);
  at::Generator g = at::detail::createCPUGenerator(3);
  at::Tensor attr = at::rand({1, s.clip.size(1), 3}, g);
  at::Tensor weights = at::rand({2, h, w, 3}, g);
  struct Out {
    at::Tensor image, aa, grad_clip, grad_attr;
  };
  auto run = [&](const at::Device& dev) {
    at::Tensor clip = s.clip.to(dev).detach().clone().requires_grad_(true);
    at::Tensor a = attr.to(dev).detach().clone().requires_grad_(true);
    at::Tensor faces = s.faces.to(dev);
    Fragments fr = ComputeFragments(clip, faces, ids.to(dev));
    at::Tensor image = Interpolate(a, fr.tri_id, fr.bary, faces);
    at::Tensor aa = Antialias(image * fr.mask + (1 - fr.mask) * 0.3, fr, clip, faces);
    ((aa * weights.to(dev)).sum() + (fr.depth * 0.1).sum()).backward();
    return Out{image.cpu(), aa.detach().cpu(), clip.grad().cpu(), a.grad().cpu()};
  };
  Out cpu = run(at::kCPU), gpu = run(kCuda);
  EXPECT_TRUE(at::allclose(gpu.image, cpu.image, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(gpu.aa, cpu.aa, 1e-5, 1e-5));
  const double scale = cpu.grad_clip.abs().max().item<double>();
  ASSERT_GT(scale, 0);
  EXPECT_LT((gpu.grad_clip - cpu.grad_clip).abs().max().item<double>(), 1e-4 * scale);
  EXPECT_TRUE(at::allclose(gpu.grad_attr, cpu.grad_attr, 1e-4, 1e-4));
}

// Element-wise |kernel − ref| <= atol + rtol·|ref|; NaN or a shape mismatch never passes.
::testing::AssertionResult Close(const at::Tensor& kernel, const at::Tensor& ref, double rtol, double atol) {
  if (!kernel.defined() || !ref.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (kernel.sizes() != ref.sizes()) {
    return ::testing::AssertionFailure() << "shapes " << kernel.sizes() << " vs " << ref.sizes();
  }
  at::Tensor k = kernel.detach().cpu().to(at::kDouble).reshape(-1), r = ref.detach().cpu().to(at::kDouble).reshape(-1);
  at::Tensor bad = ((k - r).abs() <= atol + rtol * r.abs()).logical_not();
  const int64_t n = bad.sum().item<int64_t>();
  if (n == 0) return ::testing::AssertionSuccess();
  const int64_t first = at::nonzero(bad)[0][0].item<int64_t>();
  return ::testing::AssertionFailure() << n << " of " << k.numel() << " entries differ; first at " << first << ": "
                                       << k[first].item<double>() << " vs " << r[first].item<double>();
}

// Gradients: element-wise relative error, with an absolute floor relative to the largest entry.
::testing::AssertionResult GradClose(const at::Tensor& kernel, const at::Tensor& ref) {
  if (!ref.defined()) return ::testing::AssertionFailure() << "no reference gradient";
  const double scale = ref.abs().max().item<double>();
  if (!(scale > 0)) return ::testing::AssertionFailure() << "reference gradient is zero or NaN";
  return Close(kernel, ref, 2e-3, 1e-5 * scale);
}

// Everything ComputeFragments returns, and the gradients of a random weighting of all its outputs.
struct FragmentRun {
  Fragments fr;
  at::Tensor grad_clip, grad_attr;
};

// Runs the fused kernel (`kernel`) or the twin on CUDA with ids `ids`, attributes `attr` (undefined
// for none), and upstream weights for bary, depth and attr (any may be undefined: unused output).
FragmentRun RunFragments(bool kernel, const Soup& s, const at::Tensor& ids, const at::Tensor& attr,
                         const at::Tensor& w_bary, const at::Tensor& w_depth, const at::Tensor& w_attr) {
  at::Tensor clip = s.clip.to(kCuda).detach().clone().requires_grad_(true);
  at::Tensor a = attr.defined() ? attr.to(kCuda).detach().clone().requires_grad_(true) : at::Tensor();
  at::Tensor faces = s.faces.to(kCuda), tri = ids.to(kCuda);
  FragmentRun run;
  run.fr = kernel ? ComputeFragments(clip, faces, tri, a) : ComputeFragmentsTwin(clip, faces, tri, a);
  at::Tensor loss = at::zeros({}, clip.options());
  if (w_bary.defined()) loss = loss + (run.fr.bary * w_bary.to(kCuda)).sum();
  if (w_depth.defined()) loss = loss + (run.fr.depth * w_depth.to(kCuda)).sum();
  if (w_attr.defined()) loss = loss + (run.fr.attr * w_attr.to(kCuda)).sum();
  loss.backward();
  run.grad_clip = clip.grad();
  if (a.defined()) run.grad_attr = a.grad();
  return run;
}

// Fused kernel vs twin on the kernel's own triangle ids: values and gradients.
void ExpectFragmentsMatch(const Soup& s, int64_t h, int64_t w, int64_t channels, bool shared_attr, uint64_t seed,
                          const std::string& what) {
  at::Tensor ids = RasterizeTriangleIds(s.clip.to(kCuda), s.faces.to(kCuda), h, w);
  const int64_t b = s.clip.size(0), covered = (ids >= 0).sum().item<int64_t>();
  ASSERT_GT(covered, b * h * w / 10) << what;
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Tensor attr = at::rand({shared_attr ? 1 : b, s.clip.size(1), channels}, g);
  at::Tensor w_bary = at::rand({b, h, w, 3}, g) * 2 - 1, w_depth = at::rand({b, h, w, 1}, g) * 2 - 1;
  at::Tensor w_attr = at::rand({b, h, w, channels}, g) * 2 - 1;
  FragmentRun k = RunFragments(true, s, ids, attr, w_bary, w_depth, w_attr);
  FragmentRun t = RunFragments(false, s, ids, attr, w_bary, w_depth, w_attr);
  EXPECT_TRUE(k.fr.bary.is_cuda() && k.fr.bary.scalar_type() == at::kFloat) << what;
  EXPECT_TRUE(at::equal(k.fr.tri_id.cpu(), ids.cpu())) << what;
  EXPECT_TRUE(at::equal(k.fr.mask.cpu(), t.fr.mask.cpu())) << what;
  EXPECT_TRUE(Close(k.fr.bary, t.fr.bary, 1e-5, 1e-6)) << what << " bary";
  EXPECT_TRUE(Close(k.fr.depth, t.fr.depth, 1e-5, 1e-5)) << what << " depth";
  EXPECT_TRUE(Close(k.fr.attr, t.fr.attr, 1e-5, 1e-5)) << what << " attr";
  EXPECT_TRUE(GradClose(k.grad_clip, t.grad_clip)) << what << " grad clip";
  EXPECT_TRUE(GradClose(k.grad_attr, t.grad_attr)) << what << " grad attr";
  // Nothing leaks into empty pixels or onto vertices no pixel shows.
  EXPECT_EQ(k.fr.bary.masked_select((ids < 0).unsqueeze(-1)).abs().sum().item<float>(), 0.f) << what;
  EXPECT_TRUE(at::isfinite(k.grad_clip).all().item<bool>()) << what;
}

TEST(RasterizerGpu, FusedFragmentsMatchTheTwinOnRandomSoups) {
  SKIP_WITHOUT_CUDA();
  ExpectFragmentsMatch(RandomSoup(1, 200, 11), 64, 64, 3, true, 1, "200 tris 64x64");
  ExpectFragmentsMatch(RandomSoup(2, 3000, 12, -5.5, -1.0), 96, 128, 5, false, 2, "3000 tris 96x128 b2");
  ExpectFragmentsMatch(RandomSoup(1, 20000, 13, -6.0, -2.0), 256, 256, 1, true, 3, "20k tris 256x256");
  ExpectFragmentsMatch(RandomSoup(1, 50, 14, -1.0, 0.5), 333, 17, 4, false, 4, "few big tris, tall");
}

TEST(RasterizerGpu, FusedFragmentsMatchTheTwinOnSpheres) {
  SKIP_WITHOUT_CUDA();
  ExpectFragmentsMatch(SphereInView(20, 2), 96, 128, 3, true, 5, "small sphere");
  ExpectFragmentsMatch(SphereInView(64, 2), 192, 256, 6, false, 6, "sphere 192x256");
  ExpectFragmentsMatch(SphereInView(224, 1), 512, 512, 3, true, 7, "200k-face sphere 512x512");
}

TEST(RasterizerGpu, FusedRasterizeEqualsIdsThenTheTwinsFragments) {
  SKIP_WITHOUT_CUDA();
  for (const auto& [s, h, w] : {std::tuple<Soup, int64_t, int64_t>{SphereInView(48, 2), 128, 160},
                                {RandomSoup(2, 2000, 21, -5.0, -1.0), 80, 96}}) {
    at::Tensor attr = at::rand({1, s.clip.size(1), 3}, at::detail::createCPUGenerator(8)).to(kCuda);
    at::Tensor clip = s.clip.to(kCuda).requires_grad_(true), faces = s.faces.to(kCuda);
    Fragments k = Rasterize(clip, faces, h, w, attr);
    at::Tensor ids = RasterizeTriangleIds(clip.detach(), faces, h, w);
    EXPECT_TRUE(at::equal(k.tri_id, ids));  // resolved from the key buffer by the fragment kernel
    Fragments t = ComputeFragmentsTwin(clip, faces, ids, attr);
    EXPECT_TRUE(Close(k.bary, t.bary, 1e-5, 1e-6));
    EXPECT_TRUE(Close(k.depth, t.depth, 1e-5, 1e-5));
    EXPECT_TRUE(Close(k.attr, t.attr, 1e-5, 1e-5));
    EXPECT_TRUE(at::equal(k.mask, t.mask));
    // Gradients through the fused Rasterize (with the ids it resolved and saved) equal the twin's.
    at::Generator g = at::detail::createCPUGenerator(9);
    at::Tensor w_attr = (at::rand(k.attr.sizes(), g) * 2 - 1).to(kCuda);
    at::Tensor w_depth = (at::rand(k.depth.sizes(), g) * 2 - 1).to(kCuda);
    auto grad = [&](const Fragments& f) {
      at::Tensor loss = (f.attr * w_attr).sum() + (f.depth * w_depth).sum();
      return torch::autograd::grad({loss}, {clip})[0];
    };
    EXPECT_TRUE(GradClose(grad(k), grad(t)));
  }
}

TEST(RasterizerGpu, FusedFragmentsHandleOddInputs) {
  SKIP_WITHOUT_CUDA();
  Soup s = RandomSoup(2, 400, 31);
  const int64_t h = 40, w = 56;
  at::Tensor clip = s.clip.to(kCuda), faces = s.faces.to(kCuda);
  at::Tensor ids = RasterizeTriangleIds(clip, faces, h, w);
  Fragments ref = ComputeFragmentsTwin(clip, faces, ids);
  // int32 faces and ids, a non-contiguous clip; no attributes: Fragments::attr stays undefined.
  at::Tensor strided = at::cat({clip, clip}, -1).narrow(-1, 0, 4);
  ASSERT_FALSE(strided.is_contiguous());
  Fragments k = ComputeFragments(strided, faces.to(at::kInt), ids.to(at::kInt));
  EXPECT_FALSE(k.attr.defined());
  EXPECT_TRUE(Close(k.bary, ref.bary, 1e-5, 1e-6));
  EXPECT_TRUE(Close(k.depth, ref.depth, 1e-5, 1e-5));
  EXPECT_TRUE(at::equal(k.mask, ref.mask));
  // Ids outside [0,F) are empty pixels in the kernel (the twin would fail a check).
  at::Tensor bad = ids.clone();
  bad[0][0][0] = s.faces.size(0);
  bad[1][3][5] = int64_t{1} << 40;
  Fragments kb = ComputeFragments(clip, faces, bad);
  EXPECT_EQ(kb.mask[0][0][0][0].item<float>(), 0.f);
  EXPECT_EQ(kb.mask[1][3][5][0].item<float>(), 0.f);
  EXPECT_EQ(kb.depth[1][3][5][0].item<float>(), 1.f);
  EXPECT_EQ(kb.bary[1][3][5].abs().sum().item<float>(), 0.f);
  // float64 clip runs the twin; so does float64 attr.
  Fragments d = ComputeFragments(clip.to(at::kDouble), faces, ids);
  EXPECT_EQ(d.bary.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::equal(d.bary, ComputeFragmentsTwin(clip.to(at::kDouble), faces, ids).bary));
  at::Tensor attr = at::rand({1, s.clip.size(1), 2}, at::detail::createCPUGenerator(4)).to(kCuda);
  EXPECT_EQ(ComputeFragments(clip, faces, ids, attr.to(at::kDouble)).attr.scalar_type(), at::kDouble);
  // No faces at all: every pixel empty.
  Fragments none = Rasterize(clip, at::zeros({0, 3}, faces.options()), 8, 8, attr);
  EXPECT_EQ(none.mask.sum().item<float>(), 0.f);
  EXPECT_EQ(none.attr.abs().sum().item<float>(), 0.f);
  EXPECT_TRUE((none.tri_id == -1).all().item<bool>());
  // Without grad mode the kernel runs without the autograd wrapper: same values, no graph.
  {
    c10::NoGradGuard no_grad;
    Fragments n = ComputeFragments(clip.clone().requires_grad_(true), faces, ids, attr);
    EXPECT_FALSE(n.bary.requires_grad());
    EXPECT_TRUE(Close(n.attr, ComputeFragmentsTwin(clip, faces, ids, attr).attr, 1e-5, 1e-5));
  }
}

TEST(RasterizerGpu, FusedFragmentGradientsWithPartialUpstreamAndInputs) {
  SKIP_WITHOUT_CUDA();
  Soup s = SphereInView(24, 2);
  const int64_t h = 64, w = 80;
  at::Tensor ids = RasterizeTriangleIds(s.clip.to(kCuda), s.faces.to(kCuda), h, w);
  at::Generator g = at::detail::createCPUGenerator(12);
  at::Tensor attr = at::rand({2, s.clip.size(1), 3}, g);
  at::Tensor w_depth = at::rand({2, h, w, 1}, g), w_bary = at::rand({2, h, w, 3}, g);
  // Only depth used; no attributes.
  FragmentRun k = RunFragments(true, s, ids, {}, {}, w_depth, {});
  FragmentRun t = RunFragments(false, s, ids, {}, {}, w_depth, {});
  EXPECT_TRUE(GradClose(k.grad_clip, t.grad_clip));
  // Only barycentrics used, attributes given but unused: their gradient is zero (or undefined).
  k = RunFragments(true, s, ids, attr, w_bary, {}, {});
  t = RunFragments(false, s, ids, attr, w_bary, {}, {});
  EXPECT_TRUE(GradClose(k.grad_clip, t.grad_clip));
  EXPECT_TRUE(!k.grad_attr.defined() || k.grad_attr.abs().sum().item<float>() == 0.f);
  // Gradient w.r.t. the attributes alone (clip without gradient).
  at::Tensor a = attr.to(kCuda).requires_grad_(true);
  at::Tensor wa = at::rand({2, h, w, 3}, g).to(kCuda);
  at::Tensor clip = s.clip.to(kCuda), faces = s.faces.to(kCuda), tri = ids.to(kCuda);
  at::Tensor ga = torch::autograd::grad({(ComputeFragments(clip, faces, tri, a).attr * wa).sum()}, {a})[0];
  at::Tensor gt = torch::autograd::grad({(ComputeFragmentsTwin(clip, faces, tri, a).attr * wa).sum()}, {a})[0];
  EXPECT_TRUE(GradClose(ga, gt));
}

TEST(RasterizerGpu, TextureBakeOnTheGpuMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  Soup s = SphereInView(10, 1);
  Mesh sphere;  // the sphere's faces over random positions: any mesh will do
  sphere.faces = s.faces;
  sphere.vertices = at::rand({s.clip.size(1), 3}) * 2 - 1;
  absl::StatusOr<Mesh> a = PerTriangleAtlas(sphere, 256);
  ASSERT_TRUE(a.ok()) << a.status();
  auto color = [](const at::Tensor& p) { return (p + 1) * 0.5; };
  absl::StatusOr<at::Tensor> cpu = BakeTexture(*a, 256, 256, color);
  Mesh on_gpu = *a;
  on_gpu.vertices = a->vertices.to(kCuda);
  on_gpu.faces = a->faces.to(kCuda);
  on_gpu.uvs = a->uvs.to(kCuda);
  absl::StatusOr<at::Tensor> gpu = BakeTexture(on_gpu, 256, 256, color);
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  EXPECT_TRUE(gpu->is_cuda());
  EXPECT_TRUE(at::allclose(gpu->cpu(), *cpu, 1e-5, 1e-5));
}

}  // namespace
}  // namespace psd3d
