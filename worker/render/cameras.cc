#include "worker/render/cameras.h"

#include <cmath>
#include <vector>

#include "worker/render/device_copy.h"

namespace psd3d {
namespace {

at::Tensor Normalize(const at::Tensor& v) { return v / v.norm(2, -1, true).clamp_min(1e-12); }

double Radians(double degrees) { return degrees * M_PI / 180.0; }

}  // namespace

CameraBatch CameraBatch::to(const at::Device& device) const {
  const std::vector<at::Tensor> fields = {c2w, w2c, proj, mvp, position, elevation, azimuth, distance, fovy};
  if (c2w.device().is_cpu() && device.is_cuda()) {
    // One queued copy of all nine (cameras are drawn on the host every step; see device_copy.h).
    std::vector<at::Tensor> flat;
    std::vector<int64_t> counts;
    for (const at::Tensor& t : fields) {
      flat.push_back(t.reshape({-1}));
      counts.push_back(t.numel());
    }
    const std::vector<at::Tensor> parts = ToDeviceAsync(at::cat(flat), device).split_with_sizes(counts);
    std::vector<at::Tensor> out;
    for (size_t i = 0; i < fields.size(); ++i) out.push_back(parts[i].view(fields[i].sizes()));
    return {out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8]};
  }
  auto to = [&](const at::Tensor& t) { return t.to(device); };
  return {to(c2w), to(w2c), to(proj), to(mvp), to(position), to(elevation), to(azimuth), to(distance), to(fovy)};
}

CameraBatch CameraBatch::index(int64_t i) const {
  auto s = [i](const at::Tensor& t) { return t.narrow(0, i, 1); };
  return {s(c2w), s(w2c), s(proj), s(mvp), s(position), s(elevation), s(azimuth), s(distance), s(fovy)};
}

CameraBatch CameraBatch::repeat(int64_t times) const {
  auto r = [times](const at::Tensor& t) {
    std::vector<int64_t> reps(t.dim(), 1);
    reps[0] = times;
    return t.repeat(reps);
  };
  return {r(c2w), r(w2c), r(proj), r(mvp), r(position), r(elevation), r(azimuth), r(distance), r(fovy)};
}

at::Tensor LookAt(const at::Tensor& eye, const at::Tensor& target) {
  const auto opts = eye.options();
  at::Tensor forward = Normalize(target - eye);
  at::Tensor up = at::zeros_like(forward);
  up.select(-1, 1).fill_(1.0);
  // Looking straight up or down leaves "right" undefined with world up +y; use −z as up there so that
  // poles still give a valid frame (continuous with azimuth 0).
  at::Tensor pole = at::cross(forward, up, -1).norm(2, -1, true) < 1e-6;
  at::Tensor alt = at::zeros_like(forward);
  alt.select(-1, 2).fill_(-1.0);
  up = at::where(pole, alt, up);
  at::Tensor right = Normalize(at::cross(forward, up, -1));
  at::Tensor cam_up = at::cross(right, forward, -1);
  at::Tensor c2w = at::zeros({eye.size(0), 4, 4}, opts);
  c2w.select(2, 0).narrow(1, 0, 3).copy_(right);
  c2w.select(2, 1).narrow(1, 0, 3).copy_(cam_up);
  c2w.select(2, 2).narrow(1, 0, 3).copy_(-forward);
  c2w.select(2, 3).narrow(1, 0, 3).copy_(eye);
  c2w.select(1, 3).select(1, 3).fill_(1.0);
  return c2w;
}

at::Tensor Perspective(const at::Tensor& fovy, double aspect, double near, double far) {
  at::Tensor f = 1.0 / at::tan(fovy * 0.5);
  at::Tensor p = at::zeros({fovy.size(0), 4, 4}, fovy.options());
  p.select(1, 0).select(1, 0).copy_(f / aspect);
  p.select(1, 1).select(1, 1).copy_(f);
  p.select(1, 2).select(1, 2).fill_((far + near) / (near - far));
  p.select(1, 2).select(1, 3).fill_(2.0 * far * near / (near - far));
  p.select(1, 3).select(1, 2).fill_(-1.0);
  return p;
}

CameraBatch OrbitCameras(const at::Tensor& elevation, const at::Tensor& azimuth, const at::Tensor& distance,
                         const at::Tensor& fovy, double aspect, double near, double far) {
  CameraBatch c;
  c.elevation = elevation.to(at::kFloat);
  c.azimuth = azimuth.to(at::kFloat);
  c.distance = distance.to(at::kFloat);
  c.fovy = fovy.to(at::kFloat);
  at::Tensor ce = at::cos(c.elevation);
  c.position = at::stack({c.distance * ce * at::sin(c.azimuth), c.distance * at::sin(c.elevation),
                          c.distance * ce * at::cos(c.azimuth)},
                         -1);
  c.c2w = LookAt(c.position, at::zeros_like(c.position));
  c.w2c = at::inverse(c.c2w);
  c.proj = Perspective(c.fovy, aspect, near, far);
  c.mvp = at::matmul(c.proj, c.w2c);
  return c;
}

CameraBatch SampleCameras(const ViewRanges& r, int64_t count, at::Generator& gen, const at::Device& device) {
  const int64_t per = std::max(1, r.views_per_group);
  const int64_t groups = (count + per - 1) / per;
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto uniform = [&](double lo, double hi) { return at::rand({groups}, gen, opts) * (hi - lo) + lo; };
  at::Tensor elevation = uniform(Radians(r.elevation_min), Radians(r.elevation_max));
  at::Tensor start = uniform(Radians(r.azimuth_min), Radians(r.azimuth_max));
  at::Tensor distance = uniform(r.distance_min, r.distance_max);
  at::Tensor fovy = uniform(Radians(r.fovy_min), Radians(r.fovy_max));
  // Each group's views: same elevation/distance/fovy, azimuths start + k·360°/per.
  at::Tensor offsets = at::arange(per, opts) * (2.0 * M_PI / per);
  at::Tensor azimuth = (start.unsqueeze(1) + offsets.unsqueeze(0)).reshape({-1});
  azimuth = at::remainder(azimuth + M_PI, 2.0 * M_PI) - M_PI;  // keep in [−π, π)
  auto expand = [per](const at::Tensor& t) { return t.unsqueeze(1).expand({t.size(0), per}).reshape({-1}); };
  auto take = [count](const at::Tensor& t) { return t.narrow(0, 0, count); };
  return OrbitCameras(take(expand(elevation)), take(azimuth), take(expand(distance)), take(expand(fovy)))
      .to(device);
}

Rays CameraRays(const CameraBatch& cameras, int64_t height, int64_t width) {
  const auto opts = cameras.c2w.options();
  at::Tensor js = (at::arange(width, opts) + 0.5) * (2.0 / width) - 1.0;   // NDC x, left → right
  at::Tensor is = 1.0 - (at::arange(height, opts) + 0.5) * (2.0 / height);  // NDC y, top → bottom
  // Invert the projection's scales so a ray's points project back into its pixel (whatever aspect the
  // cameras were built with).
  at::Tensor sx = cameras.proj.select(1, 0).select(1, 0).view({-1, 1, 1});  // [B,1,1]
  at::Tensor sy = cameras.proj.select(1, 1).select(1, 1).view({-1, 1, 1});
  at::Tensor x = js.view({1, 1, width}) / sx;
  at::Tensor y = is.view({1, height, 1}) / sy;
  const int64_t b = cameras.size();
  at::Tensor dirs_cam = at::stack({x.expand({b, height, width}), y.expand({b, height, width}),
                                   -at::ones({b, height, width}, opts)},
                                  -1);                                    // [B,H,W,3]
  at::Tensor rot = cameras.c2w.narrow(1, 0, 3).narrow(2, 0, 3);           // [B,3,3]
  at::Tensor dirs = at::einsum("bij,bhwj->bhwi", {rot, dirs_cam});
  Rays rays;
  rays.directions = Normalize(dirs);
  rays.origins = cameras.position.view({b, 1, 1, 3}).expand({b, height, width, 3});
  return rays;
}

}  // namespace psd3d
