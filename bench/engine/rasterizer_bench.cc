// Rasterizer: the CUDA triangle-id kernel vs the LibTorch twin on a latitude-longitude sphere in view
// (GPU: ~200k faces at 512², CPU: ~20k faces at 256²). "rasterize" = triangle ids + barycentrics and
// depth + interpolation of a 3-channel attribute; "rasterize ids" = the triangle-id pass alone.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/engine/bench_harness.h"
#include "worker/render/cameras.h"
#include "worker/render/rasterizer.h"

namespace psd3d::bench {
namespace {

struct SphereMesh {
  at::Tensor vertices, faces;  // [V,3] float32, [F,3] int64; F = 4n(n−1)
};

SphereMesh LatLongSphere(int64_t n) {
  std::vector<float> v = {0.f, 1.f, 0.f};
  const int64_t seg = 2 * n;
  for (int64_t i = 1; i < n; ++i) {
    for (int64_t j = 0; j < seg; ++j) {
      const double th = M_PI * i / n, ph = M_PI * j / n;
      v.insert(v.end(), {static_cast<float>(std::sin(th) * std::sin(ph)), static_cast<float>(std::cos(th)),
                         static_cast<float>(std::sin(th) * std::cos(ph))});
    }
  }
  v.insert(v.end(), {0.f, -1.f, 0.f});
  const int64_t south = static_cast<int64_t>(v.size() / 3) - 1;
  auto ring = [&](int64_t i, int64_t j) { return 1 + (i - 1) * seg + (j % seg); };
  std::vector<int64_t> f;
  for (int64_t j = 0; j < seg; ++j) {
    f.insert(f.end(), {0, ring(1, j), ring(1, j + 1), south, ring(n - 1, j + 1), ring(n - 1, j)});
    for (int64_t i = 1; i + 1 < n; ++i) {
      f.insert(f.end(),
               {ring(i, j), ring(i + 1, j), ring(i + 1, j + 1), ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)});
    }
  }
  return {at::tensor(v).view({-1, 3}), at::tensor(f, at::kLong).view({-1, 3})};
}

std::vector<Row> RasterizeBench(const at::Device& device) {
  const bool cuda = device.is_cuda();
  const int64_t res = cuda ? 512 : 256, n = cuda ? 224 : 71;  // 200,704 or 19,880 faces
  SphereMesh mesh = LatLongSphere(n);
  const float deg = M_PI / 180;
  CameraBatch cams =
      OrbitCameras(at::tensor({20.f * deg}), at::tensor({30.f * deg}), at::tensor({2.5f}), at::tensor({50.f * deg}));
  at::Tensor faces = mesh.faces.to(device);
  at::Tensor clip = ToClipSpace(mesh.vertices, cams.mvp).to(device);
  at::Tensor attr = at::rand({1, mesh.vertices.size(0), 3}).to(device);
  c10::NoGradGuard no_grad;

  auto full = [&](bool kernel) {
    at::Tensor ids =
        kernel ? RasterizeTriangleIds(clip, faces, res, res) : RasterizeTriangleIdsTwin(clip, faces, res, res);
    Fragments fr = ComputeFragments(clip, faces, ids);
    return Interpolate(attr, ids, fr.bary, faces);
  };
  const double f = static_cast<double>(faces.size(0)), v = static_cast<double>(clip.size(1));
  const double pixels = static_cast<double>(res * res);
  const std::string work = std::to_string(res) + "^2, " + std::to_string(faces.size(0) / 1000) + "k tris";
  const int iters = cuda ? 20 : 3;

  Row all;
  all.name = "rasterize " + std::to_string(res) + "x" + std::to_string(res);
  all.work = work;
  all.kernel_ms = TimeMs([&] { full(true); }, device, 2, iters);
  all.twin_ms = TimeMs([&] { full(false); }, device, 1, iters);
  // Read clip vertices and faces; write ids (8 B), barycentrics (12), depth (4), mask (4), attr (12).
  all.min_bytes = v * 16 + f * 24 + pixels * (8 + 12 + 4 + 4 + 12);
  all.items = f;
  all.item_unit = "tris";

  Row ids = all;
  ids.name = "rasterize ids " + std::to_string(res) + "x" + std::to_string(res);
  ids.kernel_ms = TimeMs([&] { RasterizeTriangleIds(clip, faces, res, res); }, device, 2, iters);
  ids.twin_ms = TimeMs([&] { RasterizeTriangleIdsTwin(clip, faces, res, res); }, device, 1, iters);
  ids.min_bytes = v * 16 + f * 24 + pixels * 8;
  return {all, ids};
}

PSD3D_ENGINE_BENCH("rasterize", RasterizeBench);

}  // namespace
}  // namespace psd3d::bench
