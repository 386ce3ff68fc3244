// Stages 2 and 3 of the pipeline (docs/psd-method.md, "Schedules and stages"): a DMTet surface colored
// by a hash-grid color field, rendered by the rasterizer and shaded like the world's images, shaped by
// the same score-distillation guidance as stage 1.
//   - Geometry (stage 2): sdf and deformation of the tet grid are learned (initialized from the coarse
//     NeRF's density, sdf = clamp(threshold − density, −1, 1) or its log-density grading), with
//     normal-consistency and Laplacian regularizers; the color field keeps learning with the geometry.
//   - Texture (stage 3): the surface is extracted once and frozen; only the color field learns, at a
//     higher render resolution.
// One Step() = sample `views` world cameras, rasterize the surface at render_size (supersampled by
// `supersample`, then box-filtered, with silhouette antialiasing so coverage has gradients), color
// each pixel by the field's albedo at its surface point, shade (Lambertian, the world's light), take
// the guidance loss and one Adam step. Deterministic under its seed; State() resumes bit for bit.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "worker/fields/nerf_field.h"
#include "worker/guidance/guidance.h"
#include "worker/mesh/dmtet.h"
#include "worker/pipeline/nerf_stage.h"

namespace psd3d {

struct MeshStageConfig {
  bool train_geometry = true;  // stage 2; false: stage 3 (surface frozen)
  int64_t steps = 200;
  int64_t views = 1;
  int64_t render_size = 64;  // resized to the prior's image size when different
  int64_t supersample = 1;   // rasterized at render_size × supersample, then box-filtered
  int64_t resolution = 32;   // DMTet cells per axis (geometry stage; the texture stage inherits its grid)
  double init_threshold = 5.0;  // density level of the initial surface
  int64_t init_smoothing = 0;   // box-filter passes over the initial sdf (DMTet::InitFromDensity)
  double init_softness = 0;     // tanh grading of the initial sdf over ±this much log density; 0: clamp
  double lr_sdf = 1e-2, lr_deformation = 1e-2;
  double lr_encoding = 1e-2, lr_mlp = 1e-3;  // the color field
  double normal_consistency_weight = 0.0;
  double laplacian_weight = 0.0;
  GuidanceConfig guidance;
};

// OK or INVALID_ARGUMENT naming the bad field.
absl::Status ValidateMeshStageConfig(const MeshStageConfig& config);

class MeshStage {
 public:
  // The color field starts as a copy of `field`. Geometry stage: the tet grid's sdf comes from
  // `field`'s density (FAILED_PRECONDITION when no surface crosses the threshold). Texture stage:
  // `geometry` (the geometry stage's DMTet State()) fixes the surface. `guidance_state` (optional, a
  // previous stage's Guidance::State()) carries ψ over so PSD keeps what it learned.
  static absl::StatusOr<std::unique_ptr<MeshStage>> Create(DiffusionPrior& prior, RewardModel* reward,
                                                           const std::string& prompt, const MeshStageConfig& config,
                                                           const NerfField& field, uint64_t seed,
                                                           const std::map<std::string, at::Tensor>* geometry = nullptr,
                                                           const std::map<std::string, at::Tensor>* guidance_state = nullptr);
  ~MeshStage();

  // One optimization step. FAILED_PRECONDITION naming the step when the loss or a gradient is not
  // finite or the surface vanished (parameters are left as they were before the step).
  absl::StatusOr<StageStepReport> Step();
  int64_t step() const;
  bool done() const;

  // [B,3,size,size] in [0,1] over white, no gradient, rasterized at size × supersample.
  at::Tensor Render(const CameraBatch& cameras, int64_t size) const;
  // The current surface (no gradient) and its color field.
  Mesh Surface() const;
  const NerfField& color_field() const;
  const DMTet& dmtet() const;
  const Guidance& guidance() const;

  std::map<std::string, at::Tensor> State() const;
  absl::Status LoadState(const std::map<std::string, at::Tensor>& state);

 private:
  struct Impl;
  explicit MeshStage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
