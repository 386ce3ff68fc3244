#include "worker/tinyworld/scene_render.h"

#include <cmath>
#include <map>
#include <mutex>

#include <c10/core/GradMode.h>

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

// Unit vertex normals of each shape's render mesh, computed once.
const at::Tensor& ShapeNormals(Shape shape) {
  static std::once_flag once;
  static at::Tensor* normals = nullptr;
  std::call_once(once, [] {
    normals = new at::Tensor[kNumShapes];
    for (int s = 0; s < kNumShapes; ++s) normals[s] = VertexNormals(ShapeMesh(static_cast<Shape>(s)));
  });
  return normals[static_cast<int>(shape)];
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
  Lighting light;
  light.direction = WorldLight(c2w);
  light.ambient = kAmbient;
  light.diffuse = kDiffuse;
  at::Tensor rgb = Shade(albedo, normal, light, ShadingMode::kLambertian);
  at::Tensor img = OverBackground(rgb, mask, at::ones({3}, rgb.options())).permute({0, 3, 1, 2});
  return supersample > 1 ? at::avg_pool2d(img, supersample) : img;
}

struct Group {
  std::vector<Shape> shapes;
  std::vector<int64_t> members;  // scene indices
};

}  // namespace

CameraBatch WorldCameras(const at::Tensor& elevation, const at::Tensor& azimuth) {
  at::Tensor d = at::full_like(elevation, kCameraDistance, at::kFloat);
  at::Tensor f = at::full_like(elevation, kCameraFovyDeg * kDegToRad, at::kFloat);
  return OrbitCameras(elevation, azimuth, d, f);
}

CameraBatch SampleWorldCameras(int64_t count, at::Generator& generator, const at::Device& device) {
  at::Tensor u = at::rand({2, count}, generator, at::TensorOptions().dtype(at::kFloat));
  at::Tensor elev = (kElevationMinDeg + u[0] * (kElevationMaxDeg - kElevationMinDeg)) * kDegToRad;
  at::Tensor azim = u[1] * (2 * M_PI);
  return WorldCameras(elev.to(device), azim.to(device));
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
    std::vector<at::Tensor> verts, normals, colors, faces;
    int64_t base = 0;
    for (size_t k = 0; k < g.shapes.size(); ++k) {
      std::vector<float> yaw, scale, offset, rgb;
      for (int64_t m : g.members) {
        const SceneObject& o = scenes[m].objects[k];
        yaw.push_back(o.yaw);
        scale.push_back(o.scale);
        offset.insert(offset.end(), o.offset.begin(), o.offset.end());
        rgb.insert(rgb.end(), o.rgb.begin(), o.rgb.end());
      }
      const Mesh& mesh = ShapeMesh(g.shapes[k]);
      at::Tensor yaw_t = at::tensor(yaw).to(opts.device());
      at::Tensor v = RotateY(mesh.vertices.to(opts.device()), yaw_t) * at::tensor(scale).to(opts.device()).view({n, 1, 1}) +
                     at::tensor(offset).to(opts.device()).view({n, 1, 3});
      verts.push_back(v);
      normals.push_back(RotateY(ShapeNormals(g.shapes[k]).to(opts.device()), yaw_t));
      colors.push_back(at::tensor(rgb).to(opts.device()).view({n, 1, 3}).expand({n, mesh.num_vertices(), 3}));
      faces.push_back(mesh.faces.to(opts.device()) + base);
      base += mesh.num_vertices();
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
  const Mesh& mesh = ShapeMesh(shape);
  const int64_t hi = options.size * options.supersample;
  at::Tensor v = RotateY(mesh.vertices.to(dev), yaw.to(dev, at::kFloat));
  at::Tensor ids = RasterizeTriangleIds(ToClipSpace(v, cameras.mvp), mesh.faces.to(dev), hi, hi);
  at::Tensor mask = ids.ge(0).to(at::kFloat).unsqueeze(1);
  return (options.supersample > 1 ? at::avg_pool2d(mask, options.supersample) : mask).squeeze(1);
}

}  // namespace psd3d::tinyworld
