#include "worker/tinyworld/scene_render.h"

#include <cmath>
#include <map>
#include <string>
#include <utility>

#include <c10/core/GradMode.h>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/mesh/texture_bake.h"
#include "worker/render/rasterizer.h"
#include "worker/render/shading.h"

namespace psd3d::tinyworld {
namespace {

constexpr double kDegToRad = M_PI / 180.0;
// The light sits up and to the right of the camera (camera space: +x right, +y up, +z toward the viewer).
constexpr float kLightCamera[3] = {0.40f, 0.60f, 0.69f};
constexpr double kAmbient = 0.4, kDiffuse = 0.6;

// A shape's render mesh and unit vertex normals on one device, uploaded once per device (renders run
// every training step; per-call uploads would each wait for the GPU's queued work).
struct ShapeTensors {
  at::Tensor vertices, normals, faces;
};
const ShapeTensors& ShapeOn(Shape shape, const at::Device& device) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* cache = new std::map<std::pair<int, std::string>, ShapeTensors>();
  absl::MutexLock lock(&mu);
  auto [it, added] = cache->try_emplace({static_cast<int>(shape), device.str()});
  if (added) {
    const Mesh& mesh = ShapeMesh(shape);
    it->second = {mesh.vertices.to(device), VertexNormals(mesh).to(device), mesh.faces.to(device)};
  }
  return it->second;  // std::map nodes are stable
}

// Rotation about +y by yaw [G] applied to points [G,N,3] (or [N,3] shared).
at::Tensor RotateY(const at::Tensor& p, const at::Tensor& yaw) {
  at::Tensor c = at::cos(yaw).view({-1, 1}), s = at::sin(yaw).view({-1, 1});
  at::Tensor x = p.select(-1, 0), y = p.select(-1, 1), z = p.select(-1, 2);
  // Same sense as the cameras' azimuth: +z turns toward +x.
  return at::stack({c * x + s * z, y.expand({yaw.size(0), -1}), -s * x + c * z}, -1);
}

// The light direction [B,3] in world space for each camera.
at::Tensor WorldLight(const at::Tensor& c2w) {
  at::Tensor l = at::tensor({kLightCamera[0], kLightCamera[1], kLightCamera[2]}, c2w.options());
  l = l / l.norm();
  return at::matmul(c2w.narrow(1, 0, 3).narrow(2, 0, 3), l.view({1, 3, 1})).squeeze(-1);
}

// Lambertian world shading over white: albedo, normals [B,h,w,3], mask [B,h,w,1] → [B,3,size,size]
// after box-filtering by `supersample`.
at::Tensor ShadeAndResolve(const at::Tensor& albedo, const at::Tensor& normal, const at::Tensor& mask,
                           const at::Tensor& c2w, int64_t supersample) {
  at::Tensor rgb = Shade(albedo, normal, WorldLighting(c2w), ShadingMode::kLambertian);
  at::Tensor img = OverBackground(rgb, mask, at::ones({3}, rgb.options())).permute({0, 3, 1, 2});
  return supersample > 1 ? at::avg_pool2d(img, supersample) : img;
}

struct Group {
  std::vector<Shape> shapes;
  std::vector<int64_t> members;  // scene indices
};

}  // namespace

Lighting WorldLighting(const at::Tensor& c2w) {
  Lighting light;
  light.direction = WorldLight(c2w);
  light.ambient = kAmbient;
  light.diffuse = kDiffuse;
  return light;
}

CameraBatch WorldCameras(const at::Tensor& elevation, const at::Tensor& azimuth) {
  at::Tensor d = at::full_like(elevation, kCameraDistance, at::kFloat);
  at::Tensor f = at::full_like(elevation, kCameraFovyDeg * kDegToRad, at::kFloat);
  return OrbitCameras(elevation, azimuth, d, f);
}

CameraBatch SampleWorldCameras(int64_t count, at::Generator& generator, const at::Device& device) {
  at::Tensor u = at::rand({2, count}, generator, at::TensorOptions().dtype(at::kFloat));
  at::Tensor elev = (kElevationMinDeg + u[0] * (kElevationMaxDeg - kElevationMinDeg)) * kDegToRad;
  at::Tensor azim = u[1] * (2 * M_PI);
  return WorldCameras(elev, azim).to(device);  // built on the host: one queued copy (device_copy.h)
}

CameraBatch JudgeCameras(const at::Device& device) {
  std::vector<float> elev, azim;
  for (int k = 0; k < 8; ++k) {
    elev.push_back(static_cast<float>((k % 2 == 0 ? 10.0 : 30.0) * kDegToRad));
    azim.push_back(static_cast<float>(45.0 * k * kDegToRad));
  }
  return WorldCameras(at::tensor(elev).to(device), at::tensor(azim).to(device));
}

Scene SubjectScene(const Subject& s, float yaw) {
  Scene scene;
  SceneObject o;
  o.shape = s.shape;
  o.rgb = ColorRgb(s.color);
  o.yaw = yaw;
  scene.objects.push_back(o);
  return scene;
}

at::Tensor RenderScenes(const std::vector<Scene>& scenes, const CameraBatch& cameras, const RenderOptions& options) {
  TORCH_CHECK(static_cast<int64_t>(scenes.size()) == cameras.size(), "RenderScenes: ", scenes.size(),
              " scenes but ", cameras.size(), " cameras");
  c10::NoGradGuard no_grad;
  const auto opts = cameras.mvp.options();
  const int64_t hi = options.size * options.supersample;
  at::Tensor out = at::empty({cameras.size(), 3, options.size, options.size}, opts);

  std::map<std::vector<Shape>, Group> groups;
  for (size_t i = 0; i < scenes.size(); ++i) {
    TORCH_CHECK(!scenes[i].objects.empty(), "RenderScenes: scene ", i, " is empty");
    std::vector<Shape> key;
    for (const SceneObject& o : scenes[i].objects) key.push_back(o.shape);
    Group& g = groups[key];
    g.shapes = key;
    g.members.push_back(static_cast<int64_t>(i));
  }
  for (const auto& [key, g] : groups) {
    const int64_t n = static_cast<int64_t>(g.members.size());
    const int64_t objects = static_cast<int64_t>(g.shapes.size());
    // Every object's yaw, scale, offset and color in one upload: [objects, n, 8].
    std::vector<float> packed;
    packed.reserve(objects * n * 8);
    for (int64_t k = 0; k < objects; ++k) {
      for (int64_t m : g.members) {
        const SceneObject& o = scenes[m].objects[k];
        packed.insert(packed.end(), {o.yaw, o.scale, o.offset[0], o.offset[1], o.offset[2], o.rgb[0], o.rgb[1], o.rgb[2]});
      }
    }
    const at::Tensor params = at::tensor(packed).view({objects, n, 8}).to(opts.device());
    std::vector<at::Tensor> verts, normals, colors, faces;
    int64_t base = 0;
    for (int64_t k = 0; k < objects; ++k) {
      const ShapeTensors& shape = ShapeOn(g.shapes[k], opts.device());
      const at::Tensor p = params[k];
      const at::Tensor yaw = p.select(1, 0);
      verts.push_back(RotateY(shape.vertices, yaw) * p.select(1, 1).view({n, 1, 1}) + p.narrow(1, 2, 3).view({n, 1, 3}));
      normals.push_back(RotateY(shape.normals, yaw));
      colors.push_back(p.narrow(1, 5, 3).view({n, 1, 3}).expand({n, shape.vertices.size(0), 3}));
      faces.push_back(shape.faces + base);
      base += shape.vertices.size(0);
    }
    at::Tensor idx = at::tensor(g.members, at::kLong).to(opts.device());
    at::Tensor attr = at::cat({at::cat(colors, 1), at::cat(normals, 1)}, -1);
    at::Tensor clip = ToClipSpace(at::cat(verts, 1), cameras.mvp.index_select(0, idx));
    Fragments f = Rasterize(clip, at::cat(faces, 0), hi, hi, attr);
    at::Tensor img = ShadeAndResolve(f.attr.narrow(-1, 0, 3), f.attr.narrow(-1, 3, 3), f.mask,
                                     cameras.c2w.index_select(0, idx), options.supersample);
    out.index_copy_(0, idx, img);
  }
  return out;
}

at::Tensor RenderMesh(const Mesh& mesh, const CameraBatch& cameras, const RenderOptions& options, at::Tensor* coverage) {
  const bool textured = mesh.texture.defined() && mesh.uvs.defined();
  TORCH_CHECK(textured || mesh.colors.defined(), "RenderMesh: the mesh has neither vertex colors nor a texture");
  c10::NoGradGuard no_grad;
  const auto dev = cameras.mvp.device();
  const int64_t hi = options.size * options.supersample;
  at::Tensor verts = mesh.vertices.to(dev, at::kFloat);
  at::Tensor faces = mesh.faces.to(dev);
  at::Tensor normals = VertexNormals(mesh).to(dev, at::kFloat);
  at::Tensor attr = at::cat({textured ? mesh.uvs.to(dev, at::kFloat) : mesh.colors.to(dev, at::kFloat), normals}, -1);
  Fragments f = Rasterize(ToClipSpace(verts, cameras.mvp), faces, hi, hi, attr.unsqueeze(0));
  const int64_t c = textured ? 2 : 3;
  at::Tensor albedo = f.attr.narrow(-1, 0, c);
  if (textured) {
    at::Tensor uv = albedo.reshape({-1, 2});
    albedo = SampleTexture(mesh.texture.to(dev, at::kFloat), uv).view({cameras.size(), hi, hi, -1}).narrow(-1, 0, 3);
  }
  if (coverage != nullptr) {
    *coverage = options.supersample > 1 ? at::avg_pool2d(f.mask.permute({0, 3, 1, 2}), options.supersample).squeeze(1)
                                        : f.mask.squeeze(-1);
  }
  return ShadeAndResolve(albedo, f.attr.narrow(-1, c, 3), f.mask, cameras.c2w, options.supersample);
}

at::Tensor RenderSilhouettes(Shape shape, const at::Tensor& yaw, const CameraBatch& cameras, const RenderOptions& options) {
  TORCH_CHECK(yaw.dim() == 1 && yaw.size(0) == cameras.size(), "RenderSilhouettes: yaw must be [B] for B cameras");
  c10::NoGradGuard no_grad;
  const auto dev = cameras.mvp.device();
  const ShapeTensors& mesh = ShapeOn(shape, dev);
  const int64_t hi = options.size * options.supersample;
  at::Tensor v = RotateY(mesh.vertices, yaw.to(dev, at::kFloat));
  at::Tensor ids = RasterizeTriangleIds(ToClipSpace(v, cameras.mvp), mesh.faces, hi, hi);
  at::Tensor mask = ids.ge(0).to(at::kFloat).unsqueeze(1);
  return (options.supersample > 1 ? at::avg_pool2d(mask, options.supersample) : mask).squeeze(1);
}

}  // namespace psd3d::tinyworld
