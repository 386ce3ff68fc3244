// Cameras: look-at poses, OpenGL perspective projection, camera rays and random view sampling.
//
// World convention (docs/engine.md): right-handed, y-up, the object centred at the origin. A camera at
// elevation e (above the xz-plane) and azimuth a (around +y, 0 on the +z axis, 90° on +x) at distance d
// sits at d·(cos e·sin a, sin e, cos e·cos a) and looks at the origin. Camera space follows OpenGL: the
// camera looks down −z with +y up and +x right; clip space is OpenGL's (NDC in [−1,1]³). Image row 0 is
// the top of the picture.
#pragma once

#include <ATen/ATen.h>

namespace psd3d {

// A batch of B pinhole cameras; every tensor is float32 on one device.
struct CameraBatch {
  at::Tensor c2w;        // [B,4,4] camera-to-world
  at::Tensor w2c;        // [B,4,4] world-to-camera (view matrix)
  at::Tensor proj;       // [B,4,4] perspective projection
  at::Tensor mvp;        // [B,4,4] proj · w2c: world → clip space
  at::Tensor position;   // [B,3] camera centres
  at::Tensor elevation;  // [B] radians
  at::Tensor azimuth;    // [B] radians
  at::Tensor distance;   // [B]
  at::Tensor fovy;       // [B] vertical field of view, radians

  int64_t size() const { return c2w.size(0); }
  CameraBatch to(const at::Device& device) const;
  CameraBatch index(int64_t i) const;  // a batch of one
  CameraBatch repeat(int64_t times) const;  // the whole batch `times` over: c₀…c_{B−1}, c₀…
};

// [B,4,4] camera-to-world matrices of cameras at `eye` [B,3] looking at `target` [B,3] with world up +y.
at::Tensor LookAt(const at::Tensor& eye, const at::Tensor& target);

// [B,4,4] OpenGL perspective matrices.
at::Tensor Perspective(const at::Tensor& fovy, double aspect, double near, double far);

// Cameras on spheres around the origin; angles in radians, all [B].
CameraBatch OrbitCameras(const at::Tensor& elevation, const at::Tensor& azimuth, const at::Tensor& distance,
                         const at::Tensor& fovy, double aspect = 1.0, double near = 0.01, double far = 100.0);

// Ranges for random views (degrees), the defaults of threestudio's random-camera data module.
struct ViewRanges {
  double elevation_min = -10, elevation_max = 45;
  double azimuth_min = -180, azimuth_max = 180;
  double distance_min = 1.5, distance_max = 2.0;
  double fovy_min = 40, fovy_max = 70;
  // Views per group: a group shares elevation, distance and fovy and its azimuths are spaced 360°/n
  // apart from a random start (n = 4: the four orthogonal views of multi-view priors). 1: independent.
  int views_per_group = 1;
};

// `count` random cameras (a multiple of views_per_group), deterministic for a given generator state.
CameraBatch SampleCameras(const ViewRanges& ranges, int64_t count, at::Generator& generator,
                          const at::Device& device = at::kCPU);

// Rays through pixel centres for an H×W image: origins and unit directions, each [B,H,W,3], world space.
// The cameras' projection should have aspect W/H for square pixels.
struct Rays {
  at::Tensor origins;
  at::Tensor directions;
};
Rays CameraRays(const CameraBatch& cameras, int64_t height, int64_t width);

}  // namespace psd3d
