// The whole optimization of one job: coarse NeRF → DMTet geometry → texture → GLB export
// (docs/psd.md), each stage driven by the same guidance method. A Pipeline is stepped one optimization
// step at a time so its caller (the engine, the CLI's local mode, tools/eval, tests) can report
// progress, preview, checkpoint and stop between any two steps. The next stage is built from the
// previous one when its last step is taken; ψ carries over between stages.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "worker/pipeline/export.h"
#include "worker/pipeline/mesh_stage.h"
#include "worker/pipeline/nerf_stage.h"

namespace psd3d {

enum class PipelineStage { kCoarse = 0, kGeometry = 1, kTexture = 2, kExport = 3 };
absl::string_view PipelineStageName(PipelineStage stage);  // "coarse", "geometry", "texture", "export"

struct PipelineConfig {
  NerfStageConfig coarse;
  MeshStageConfig geometry;  // train_geometry = true
  MeshStageConfig texture;   // train_geometry = false
  ExportOptions export_options;
};

// OK or INVALID_ARGUMENT naming the stage and field.
absl::Status ValidatePipelineConfig(const PipelineConfig& config);

struct PipelineStepReport {
  PipelineStage stage = PipelineStage::kCoarse;  // the stage the step belonged to
  int64_t step = 0;         // 1-based within the stage
  int64_t stage_steps = 0;  // the stage's length
  double progress = 0;      // 0..1 over the optimization (export excluded)
  StageStepReport detail;
};

class Pipeline {
 public:
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(DiffusionPrior& prior, RewardModel* reward,
                                                          const std::string& prompt, const PipelineConfig& config,
                                                          uint64_t seed, const at::Device& device = at::kCPU);
  ~Pipeline();

  // One step of the current stage (FAILED_PRECONDITION from the stage names it and the step; a
  // failing stage transition names the stage). FAILED_PRECONDITION when optimization is finished.
  absl::StatusOr<PipelineStepReport> Step();
  PipelineStage stage() const;  // kExport once every optimization step is taken
  int64_t stage_step() const;   // steps taken in the current stage
  int64_t stage_steps(PipelineStage stage) const;
  int64_t total_steps() const;  // over the three optimized stages
  int64_t steps_done() const;
  const PipelineConfig& config() const;

  // Renders of the current state: [B,3,size,size] in [0,1].
  at::Tensor Render(const CameraBatch& cameras, int64_t size) const;
  // A 2×2 grid of views (azimuth 45°, 135°, 225°, 315°, elevation 20°) as PNG, `size` px per view.
  absl::StatusOr<std::string> PreviewPng(int64_t size = 128) const;
  // The final mesh (the texture stage's surface and colors) as GLB. FAILED_PRECONDITION before the
  // export stage.
  absl::StatusOr<std::string> ExportGlb() const;
  // The final colored mesh, for tests and tools (same preconditions).
  absl::StatusOr<Mesh> ExportMesh() const;

  // Everything needed to resume: the current stage's state, which stage it is and the job's seed.
  // LoadState expects a Pipeline created with the same prompt and config.
  std::map<std::string, at::Tensor> State() const;
  absl::Status LoadState(const std::map<std::string, at::Tensor>& state);

 private:
  struct Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
