#include "worker/render/shading.h"

#include <cmath>

namespace psd3d {

at::Tensor Shade(const at::Tensor& albedo, const at::Tensor& normal, const Lighting& light, ShadingMode mode) {
  TORCH_CHECK(albedo.size(-1) == 3 && normal.sizes() == albedo.sizes(), "shade: albedo and normal must be [...,3] of ",
              "one shape, got ", albedo.sizes(), " and ", normal.sizes());
  at::Tensor n = normal / normal.norm(2, -1, true).clamp_min(1e-12);
  if (mode == ShadingMode::kNormal) return (n + 1.0) * 0.5;
  if (mode == ShadingMode::kAlbedo) return albedo;
  TORCH_CHECK(light.direction.defined() && light.direction.dim() == 2 && light.direction.size(0) == albedo.size(0),
              "shade: light direction must be [B,3] for a batch of ", albedo.size(0));
  std::vector<int64_t> shape(albedo.dim(), 1);
  shape.front() = albedo.size(0);
  shape.back() = 3;
  at::Tensor l = light.direction.view(shape);
  at::Tensor lambert = (n * l).sum(-1, true).clamp_min(0.0);
  at::Tensor shading = light.ambient + light.diffuse * lambert;
  const at::Tensor base = mode == ShadingMode::kTextureless ? at::full_like(albedo, 0.7) : albedo;
  return (base * shading).clamp(0.0, 1.0);
}

Lighting CameraLights(const CameraBatch& cameras, at::Generator& generator, double spread_deg) {
  const int64_t b = cameras.size();
  const auto opts = cameras.position.options();
  at::Tensor toward_camera = cameras.position / cameras.position.norm(2, -1, true).clamp_min(1e-12);
  at::Tensor jitter = (at::rand({b, 3}, generator, at::TensorOptions().dtype(at::kFloat)).to(opts) * 2.0 - 1.0) *
                      std::tan(spread_deg * M_PI / 180.0);
  at::Tensor dir = toward_camera + jitter;
  Lighting light;
  light.direction = dir / dir.norm(2, -1, true).clamp_min(1e-12);
  return light;
}

at::Tensor OverBackground(const at::Tensor& rgb, const at::Tensor& mask, const at::Tensor& background) {
  at::Tensor bg = background.dim() == 1 ? background.to(rgb.options()).view({1, 1, 1, 3}) : background;
  return rgb * mask + bg * (1.0 - mask);
}

}  // namespace psd3d
