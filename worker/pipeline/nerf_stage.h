// Stage 1 of the pipeline (docs/psd-method.md, "Schedules and stages"): a coarse NeRF (hash-grid field,
// blob-initialized density) shaped by score-distillation guidance from renders of random world views.
// One Step() = render `views` views, guidance loss (any GuidanceMethod), Adam on the field. Every
// random draw comes from the stage's own CPU generator, so a stage is deterministic under its seed,
// and State() holds everything (field, optimizer, guidance ψ, generator, step) to resume the same
// trajectory bit for bit on the same device.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "worker/fields/nerf_field.h"
#include "worker/guidance/guidance.h"

namespace psd3d {

struct NerfStageConfig {
  int64_t steps = 300;           // the stage's length (schedules run over it)
  int64_t views = 1;             // views rendered per step
  int64_t render_size = 32;      // rendered at this size, then resized to the prior's image size
  int64_t samples_per_ray = 48;
  NerfFieldConfig field;
  double lr_encoding = 1e-2, lr_mlp = 1e-3;
  double sparsity_weight = 0.0;  // × mean opacity: discourages haze
  GuidanceConfig guidance;
};

// OK or INVALID_ARGUMENT naming the bad field (including the field's and the schedules').
absl::Status ValidateNerfStageConfig(const NerfStageConfig& config);

struct StageStepReport {
  int64_t step = 0;  // the step just taken (0-based)
  double loss = 0;
  GuidanceStats guidance;
  double seconds = 0;
};

class NerfStage {
 public:
  static absl::StatusOr<std::unique_ptr<NerfStage>> Create(DiffusionPrior& prior, RewardModel* reward,
                                                           const std::string& prompt, const NerfStageConfig& config,
                                                           uint64_t seed, const at::Device& device = at::kCPU);
  ~NerfStage();

  // One optimization step. FAILED_PRECONDITION naming the step when the loss or a gradient is not
  // finite (the field is left as it was before the step).
  absl::StatusOr<StageStepReport> Step();
  int64_t step() const;  // steps taken so far
  bool done() const;     // step() == config.steps

  // Renders [B,3,size,size] in [0,1] over white (no gradient, bin-centre samples).
  at::Tensor Render(const CameraBatch& cameras, int64_t size) const;
  const NerfField& field() const;
  const Guidance& guidance() const;

  std::map<std::string, at::Tensor> State() const;
  // INVALID_ARGUMENT naming what is missing or mis-shaped; after an error the stage may be partly
  // loaded and must be discarded.
  absl::Status LoadState(const std::map<std::string, at::Tensor>& state);

 private:
  struct Impl;
  explicit NerfStage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
