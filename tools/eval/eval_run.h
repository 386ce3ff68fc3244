// One run of the evaluation: the whole pipeline for one (method, prompt, seed) under the shared preset,
// its GLB, and the tiny world's judge on that GLB (the file's bytes decoded back, so what is judged is
// exactly what a user downloads). Everything that can go wrong inside a run becomes the run's error,
// so one bad run never ends a sharded evaluation of hundreds.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "tools/eval/results_csv.h"
#include "tools/eval/run_list.h"
#include "worker/pipeline/presets.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d::eval {

// The pack's prior and both reward models on one device, loaded once per process.
struct EvalModels {
  std::unique_ptr<tinyworld::TinyPrior> prior;
  std::unique_ptr<tinyworld::TinyReward> reward;       // guides PSD, DreamDPO, reward gradient
  std::unique_ptr<tinyworld::TinyReward> reward_eval;  // only judges (reward hacking check)
  at::Device device = at::kCPU;
};
// The pack's errors name the pack and the model.
absl::StatusOr<EvalModels> LoadEvalModels(const std::string& pack_dir, const at::Device& device);

// --device of the tools: "" (CUDA when available), "cpu", "cuda" or "cuda:N". INVALID_ARGUMENT for
// other names, FAILED_PRECONDITION for CUDA on a machine without it.
absl::StatusOr<at::Device> ParseDevice(const std::string& name);

// PresetConfig(quality, method) with every optimized stage's steps multiplied by `steps_scale` (rounded,
// at least 1) through ApplyStageOverride, so the t-window schedules follow the new lengths, then
// `settings` (SetConfigValue, in order). INVALID_ARGUMENT for a scale ≤ 0, an override the engine
// refuses or a bad setting.
absl::StatusOr<PipelineConfig> EvalConfig(Quality quality, GuidanceMethod method, double steps_scale,
                                          const std::vector<std::string>& settings = {});
// The settings as one CSV field: "a=1 b=2" ("" for none).
std::string JoinSettings(const std::vector<std::string>& settings);

struct EvalSettings {
  Quality quality = Quality::kDraft;
  double steps_scale = 1;
  std::vector<std::string> settings;  // presets.h SetConfigValue knobs, applied after the step scale
  std::string out_dir;   // GLBs go to out_dir/glb/
  bool keep_glb = true;  // write each run's GLB
};

// "glb/<method>__<prompt with '_' for spaces>__s<seed>.glb", relative to the out folder.
std::string GlbRelativePath(absl::string_view method, absl::string_view prompt, uint64_t seed);

// Runs `run` to the end and judges its GLB. Never fails: a failing step, export, judge or GLB write
// (absl::Status or a thrown exception) gives ok = false and the error.
RunResult RunOne(EvalModels& models, const EvalRun& run, const EvalSettings& settings);

}  // namespace psd3d::eval
