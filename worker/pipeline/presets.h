// Quality presets and per-stage overrides: what a job's JobSpec turns into (docs/psd.md, "Presets").
//   - kDraft: the embedded default. Tiny pack on CPU, the whole job within about 3 minutes on a 2-core
//     machine: small hash grid, low render sizes, one view per step, short stages.
//   - kStandard, kHigh: for the GPU. Full hash grid (16 levels × 2 features, 2^19 rows), more views
//     per step, finer DMTet and render sizes, longer stages.
// Every method runs the same preset, so comparisons differ only in the guidance.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "worker/pipeline/pipeline.h"

namespace psd3d {

enum class Quality { kDraft, kStandard, kHigh };
absl::string_view QualityName(Quality q);  // "draft", "standard", "high"
absl::StatusOr<Quality> ParseQuality(absl::string_view name);

PipelineConfig PresetConfig(Quality quality, GuidanceMethod method);

// A stage's knobs from JobSpec.stage_overrides (unset: keep the preset's value). For the export stage
// only render_resolution applies: the texture atlas size.
struct StageOverride {
  std::optional<int64_t> steps;
  std::optional<int64_t> render_resolution;
  std::optional<int64_t> batch_views;
};

// Applies `o` to `stage` of `config`; INVALID_ARGUMENT naming the stage and knob when a value is out
// of range for the engine (the server validates the API's ranges before anything is queued), and then
// `config` is left unchanged (so is it by SetConfigValue's errors).
absl::Status ApplyStageOverride(PipelineStage stage, const StageOverride& o, PipelineConfig* config);

// Sets one knob by name, for sweeps and experiments (tools/eval --set): "<stage>.<field>=<value>" with
// stage coarse|geometry|texture (or "all" for the three) and field one of steps, views, render_size,
// samples_per_ray (coarse), supersample, resolution, init_threshold, init_smoothing, init_softness
// (geometry), lr_encoding, lr_mlp, lr_sdf, lr_deformation, sparsity_weight (coarse),
// normal_consistency_weight, laplacian_weight, blob_scale, blob_std, grid_levels, grid_base_resolution,
// grid_per_level_scale, grid_log2_table_size (coarse: the hash grid every stage's field keeps), and the
// guidance's guidance_scale, t_min, t_max (a number, or "start:end" annealed over the stage),
// lambda_pref, tau, pref_gate, pref_t_max, pref_scale (one, clip or tanh), psi_lr, psi_every, psi_warmup,
// t_feedback, psi_from_ranking, per_view_winner, loser_uses_cfg and cuda_graphs (0 or 1), dpo_beta,
// reward_weight, grad_clamp; or "export.texture_size=<n>".
// INVALID_ARGUMENT names an unknown key or a value that does not parse or validate.
absl::Status SetConfigValue(absl::string_view setting, PipelineConfig* config);

}  // namespace psd3d
