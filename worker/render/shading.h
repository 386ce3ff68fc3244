// Shading of rendered surfaces (albedo, Lambertian with ambient, textureless, normal maps) and
// background blending. Works on any [...,3] layout: the rasterizer's [B,H,W,3] images or the volume
// renderer's per-sample albedo and normals.
#pragma once

#include <ATen/ATen.h>

#include "worker/render/cameras.h"

namespace psd3d {

enum class ShadingMode {
  kAlbedo,       // the color itself
  kLambertian,   // albedo · (ambient + diffuse · max(0, n·l))
  kTextureless,  // a grey surface lit like kLambertian: the geometry alone (DreamFusion's trick)
  kNormal,       // world normals as colors, (n + 1) / 2
};

struct Lighting {
  at::Tensor direction;  // [B,3] unit vectors from the surface toward the light
  double ambient = 0.1;
  double diffuse = 0.9;
};

// `albedo` and `normal` are [B,...,3] with the same shape; normals need not be normalized (they are).
at::Tensor Shade(const at::Tensor& albedo, const at::Tensor& normal, const Lighting& light, ShadingMode mode);

// Point lights near each camera, as DreamFusion/threestudio sample them: the light sits at the camera's
// direction perturbed by up to `spread_deg` degrees, so lit sides face the viewer.
Lighting CameraLights(const CameraBatch& cameras, at::Generator& generator, double spread_deg = 30.0);

// rgb over background: rgb·mask + bg·(1 − mask). rgb [B,H,W,3], mask [B,H,W,1], bg [3] or [B,H,W,3].
at::Tensor OverBackground(const at::Tensor& rgb, const at::Tensor& mask, const at::Tensor& background);

}  // namespace psd3d
