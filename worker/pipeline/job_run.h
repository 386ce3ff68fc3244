// One job's pipeline behind a plain C++ interface (no LibTorch, no protobuf in this header), so that the
// code that speaks the API's protobufs (worker/psd_engine.cc, the CLI) is compiled without LibTorch's
// include paths: pip-installed LibTorch ships its own, older google/protobuf headers, which would
// shadow the system's in any file that includes generated *.pb.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace psd3d {

// The embedded tiny pack's directory: $PSD3D_PACK_DIR, else the source tree's models/tiny.
std::string DefaultTinyPackDir();

// What a job asks for, in plain values (the JobSpec's fields).
struct JobRequest {
  std::string prompt, negative_prompt;
  uint64_t seed = 0;
  std::string method = "psd";     // guidance.h GuidanceMethodName: sds, psd, psd_fixed_negative, dreamdpo, reward_gradient
  std::string quality = "draft";  // presets.h QualityName: draft, standard, high
  struct Override {
    int stage = 0;  // 1 coarse, 2 geometry, 3 texture, 4 export (the API's Stage numbers)
    std::optional<int64_t> steps, render_resolution, batch_views;
  };
  std::vector<Override> overrides;
  std::vector<std::string> settings;  // presets.h SetConfigValue, applied last
  // Checkpoints carry it and resume only into a run with the same identity (e.g. a spec fingerprint).
  std::string identity;
};

// Model packs loaded once per device and kept for every later job.
class JobModels {
 public:
  // `device`: cpu, cuda or auto. INVALID_ARGUMENT / FAILED_PRECONDITION for a device that is unknown or
  // absent. Packs (name → directory) load on first use.
  static absl::StatusOr<std::unique_ptr<JobModels>> Create(std::map<std::string, std::string> packs,
                                                           const std::string& device);
  ~JobModels();
  const std::string& device() const;  // "cpu" or "cuda"

 private:
  friend class JobRun;
  struct Impl;
  explicit JobModels(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// INVALID_ARGUMENT unless every setting applies to a preset (so a daemon can refuse bad flags at start).
absl::Status CheckSettings(const std::vector<std::string>& settings);

struct JobRunStep {
  int stage = 1;  // the API's Stage number of the step
  int64_t step = 0, stage_steps = 0;  // 1-based within the stage
  double progress = 0;                // 0..1 over the optimization
  double loss = 0, reward = 0, seconds = 0;
};

class JobRun {
 public:
  // The pipeline of `request` on the models' device, with the pack `pack`. INVALID_ARGUMENT for a prompt
  // the pack cannot read or a bad override/setting; FAILED_PRECONDITION for a pack this worker lacks.
  static absl::StatusOr<std::unique_ptr<JobRun>> Create(JobModels& models, const std::string& pack,
                                                        const JobRequest& request);
  ~JobRun();

  // One optimization step (FAILED_PRECONDITION naming stage and step on divergence).
  absl::StatusOr<JobRunStep> Step();
  bool optimizing() const;  // false once every optimization step is taken
  int stage() const;        // the API's Stage number of the current stage (4 = export)
  int64_t stage_step() const;
  int64_t steps_done() const;
  // Preview interval in steps for this quality when the job names none (DRAFT 20, else 100).
  int64_t default_preview_interval() const;

  // safetensors bytes of the whole state, and back. Resume: FAILED_PRECONDITION when the checkpoint
  // belongs to another request identity, INVALID_ARGUMENT when it does not parse or fit; after an
  // error the run must be discarded.
  absl::StatusOr<std::string> Checkpoint() const;
  absl::Status Resume(const std::string& bytes);

  absl::StatusOr<std::string> PreviewPng(int64_t size) const;  // 2×2 views, `size` px each
  absl::StatusOr<std::string> ExportGlb() const;               // once !optimizing()

 private:
  struct Impl;
  explicit JobRun(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
