// The production engine: runs a job's PSD pipeline (worker/pipeline/job_run.h) behind worker/engine.h
// for psd3d-worker and the CLI's local mode. It keeps model packs loaded between jobs, turns the
// JobSpec into a pipeline request (quality preset, method, per-stage overrides, negative prompt),
// reports every step, sends previews, checkpoints at stage boundaries, when the runtime asks and on
// shutdown, and stores mesh.glb (and preview.png) when done.
// This file and psd_engine.cc speak protobuf and must not see LibTorch's include paths (job_run.h
// says why); they reach the pipeline only through job_run.h.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine.h"

namespace psd3d {

struct PsdEngineOptions {
  // Model pack name → directory (a psd3d-pack/1 manifest). JobSpec.model_pack picks one.
  std::map<std::string, std::string> packs;
  std::string device = "auto";  // "cpu", "cuda" or "auto" (CUDA when available)
  int64_t preview_size = 128;   // pixels per view of the 2×2 preview grid
  // Expert knobs applied to every job after its spec (presets.h SetConfigValue), e.g.
  // "coarse.guidance_scale=20". Checked by Create.
  std::vector<std::string> settings;
};

// PsdEngineOptions::packs from "name=dir,name=dir". INVALID_ARGUMENT for a malformed list.
absl::StatusOr<std::map<std::string, std::string>> ParsePackList(absl::string_view list);

class PsdEngine : public Engine {
 public:
  // INVALID_ARGUMENT for an unknown device, a bad setting or an empty pack list; FAILED_PRECONDITION
  // for --device=cuda without CUDA. Packs load on first use.
  static absl::StatusOr<std::unique_ptr<PsdEngine>> Create(const PsdEngineOptions& options);
  ~PsdEngine() override;

  std::string name() const override { return "psd"; }
  // Errors name the stage and step (the runtime adds the job id). A prompt the pack cannot read, a bad
  // override or an unknown pack are INVALID_ARGUMENT/FAILED_PRECONDITION (never retried); a non-finite
  // loss or a vanished surface is FAILED_PRECONDITION; a checkpoint that does not fit the job is
  // ignored (the job restarts, with a warning in its log).
  absl::Status Run(JobContext& ctx, const std::string* checkpoint) override;

  const std::string& device() const;  // "cpu" or "cuda"

 private:
  struct Impl;
  explicit PsdEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
