// Volume rendering of a density/color field (the coarse NeRF stage): stratified samples along camera
// rays inside the scene's bounding sphere, emission-absorption compositing into color, opacity, depth
// and per-sample weights, and a background blended behind. An optional occupancy grid skips the field
// where it is empty.
#pragma once

#include <ATen/ATen.h>

#include <functional>

#include "worker/fields/field_sample.h"
#include "worker/render/cameras.h"

namespace psd3d {

// Compositing of R rays with S samples each: sigma [R,S] ≥ 0, delta [R,S] sample spacing, t [R,S]
// sample depth, rgb [R,S,3]. Differentiable w.r.t. sigma and rgb (t and delta are constants).
struct Composite {
  at::Tensor color;    // [R,3]  Σ w_i c_i
  at::Tensor opacity;  // [R]    Σ w_i
  at::Tensor depth;    // [R]    Σ w_i t_i (not normalized by opacity)
  at::Tensor weights;  // [R,S]  w_i = T_i (1 − exp(−σ_i δ_i)), T_i = exp(−Σ_{j<i} σ_j δ_j)
};
// The fused CUDA kernel for CUDA tensors when built with CUDA, else CompositeTwin.
Composite CompositeRays(const at::Tensor& sigma, const at::Tensor& delta, const at::Tensor& t, const at::Tensor& rgb);
// Pure LibTorch (autograd through cumsum/exp): the reference, and the CPU path.
Composite CompositeTwin(const at::Tensor& sigma, const at::Tensor& delta, const at::Tensor& t, const at::Tensor& rgb);
bool CompositeHasCudaKernel();  // built with the CUDA kernel

// The field as the renderer sees it: points [N,3] (world) → density [N] (≥ 0) and albedo [N,3].
using FieldFn = std::function<FieldSample(const at::Tensor& points)>;

// A 3-D bitfield over the cube [−radius, radius]³ marking cells where the density may exceed a
// threshold; updated from the field every few steps with a decaying maximum (as instant-ngp does).
class OccupancyGrid {
 public:
  // The grid lives on `device`: make it where rendering happens, so lookups copy nothing per step.
  OccupancyGrid(double radius, int64_t resolution = 32, double threshold = 0.01, const at::Device& device = at::kCPU);
  // Re-evaluates the density at one jittered point per cell (chunked); density_scale converts density
  // into the opacity measure compared with the threshold (usually the sample spacing).
  void Update(const std::function<at::Tensor(const at::Tensor&)>& density, double density_scale,
              at::Generator& generator, double decay = 0.95);
  // [N] bool: whether each point [N,3] falls into an occupied cell (points outside the cube: false).
  at::Tensor Occupied(const at::Tensor& points) const;
  double occupied_fraction() const;
  at::Tensor values() const { return values_; }  // [res,res,res] decayed density estimates

 private:
  double radius_, threshold_;
  int64_t res_;
  at::Tensor values_;    // float [res,res,res]
  at::Tensor occupied_;  // bool [res³]: values_ > threshold_, refreshed by Update
};

struct VolumeRenderOptions {
  int64_t height = 64, width = 64;
  int64_t samples_per_ray = 256;
  double radius = 1.0;      // scene bound: rays are sampled where they cross the sphere of this radius
  bool stratified = true;   // jitter samples within their bins (training); false: bin centres
  at::Tensor background;    // [3] or [B,H,W,3]; undefined: white
  const OccupancyGrid* occupancy = nullptr;  // skip field evaluation in empty cells
  int64_t chunk = 1 << 20;  // field evaluation chunk (points)
};

struct VolumeRender {
  at::Tensor rgb;      // [B,H,W,3] composited over the background
  at::Tensor opacity;  // [B,H,W,1]
  at::Tensor depth;    // [B,H,W,1] expected depth of the opaque part (Σ w t / max(O, ε))
  at::Tensor weights;  // [B·H·W, S]
  at::Tensor points;   // [B·H·W, S, 3] sample positions (for normal- and orientation-based losses)
  at::Tensor directions;  // [B·H·W, 3] ray directions
  at::Tensor valid;    // [B·H·W] bool: the ray crosses the bounding sphere
};

// Renders `field` from `cameras`. Gradients flow to whatever the field's outputs depend on.
VolumeRender RenderVolume(const FieldFn& field, const CameraBatch& cameras, const VolumeRenderOptions& options,
                          at::Generator* generator = nullptr);

}  // namespace psd3d
