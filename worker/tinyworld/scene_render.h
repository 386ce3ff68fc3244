// Renders tiny-world scenes with psd3d's rasterizer: the prior's and the reward's training images, the
// judge's references, and the degradations. Everything is on the fly (no image dataset is stored).
//
// The world's camera (docs/tiny-world.md): fixed distance 3 and vertical field of view 45°, elevation
// in [−10°, 40°], azimuth in [0°, 360°); the object gets its own random yaw. Shading: flat albedo,
// Lambertian with ambient, one light from the camera's upper right; background plain white. Images are
// rendered at `supersample`× the size and box-filtered down, which antialiases the silhouettes.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "worker/render/cameras.h"
#include "worker/render/shading.h"
#include "worker/tinyworld/world.h"

namespace psd3d::tinyworld {

inline constexpr double kCameraDistance = 3.0;
inline constexpr double kCameraFovyDeg = 45.0;
inline constexpr double kElevationMinDeg = -10.0, kElevationMaxDeg = 40.0;
inline constexpr int64_t kImageSize = 64;

// Cameras of the world at the given elevation and azimuth (radians, [B] each) on `elevation`'s device.
CameraBatch WorldCameras(const at::Tensor& elevation, const at::Tensor& azimuth);
// `count` cameras with elevation and azimuth uniform in the world's ranges.
CameraBatch SampleWorldCameras(int64_t count, at::Generator& generator, const at::Device& device = at::kCPU);
// The judge's 8 fixed views: azimuth 0°, 45°, …, 315°, elevation alternating 10° and 30°.
CameraBatch JudgeCameras(const at::Device& device = at::kCPU);

// The world's light for each camera (direction in world space, ambient, diffuse): shade with
// ShadingMode::kLambertian to look like the world's renders.
Lighting WorldLighting(const at::Tensor& c2w);

// One object of a scene: a primitive with its albedo, rotated by `yaw` (radians, about +y), scaled
// about the origin, then moved by `offset` (world units).
struct SceneObject {
  Shape shape = Shape::kCube;
  Rgb rgb = {0.5f, 0.5f, 0.5f};
  float yaw = 0;
  float scale = 1;
  std::array<float, 3> offset = {0, 0, 0};
};
// A scene: the subject first, then extras (the reward's floaters).
struct Scene {
  std::vector<SceneObject> objects;
};
// The plain scene of a subject at a yaw.
Scene SubjectScene(const Subject& s, float yaw);

struct RenderOptions {
  int64_t size = kImageSize;
  int64_t supersample = 2;
};

// Renders scene i from camera i: [B,3,size,size] float32 sRGB in [0,1] on the cameras' device, white
// background. Scenes with the same list of shapes are rasterized together as one batch.
at::Tensor RenderScenes(const std::vector<Scene>& scenes, const CameraBatch& cameras, const RenderOptions& options = {});

// A mesh with vertex colors (Mesh::colors) or a texture (uvs + texture), e.g. a generated GLB, rendered
// like a scene (same light, background and antialiasing) from each camera: [B,3,size,size]. With
// `coverage` set, also writes the mesh's coverage [B,size,size] in [0,1] there.
at::Tensor RenderMesh(const Mesh& mesh, const CameraBatch& cameras, const RenderOptions& options = {},
                      at::Tensor* coverage = nullptr);

// Coverage [B,size,size] in [0,1] (supersampled) of one shape at yaws [B] from cameras of size B.
at::Tensor RenderSilhouettes(Shape shape, const at::Tensor& yaw, const CameraBatch& cameras,
                             const RenderOptions& options = {});

}  // namespace psd3d::tinyworld
