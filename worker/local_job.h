// A JobContext for running one job in this process, without Redis or a server: the CLI's
// `psd3d generate`, tools and tests. Progress goes to a callback, previews and artifacts to files, a
// checkpoint (optional) to a file, and cancellation comes from a flag (e.g. set by SIGINT).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "worker/engine.h"

namespace psd3d {

struct LocalJobOptions {
  std::string job_id = "local";
  v1::JobSpec spec;                 // with the seed set
  std::string output_glb;           // where "mesh.glb" goes; other artifacts go to preview_dir
  std::string preview_dir;          // previews as <stage>-<step>.png and latest.png; empty: none kept
  std::string checkpoint_path;      // empty: no checkpoints are written
  double checkpoint_interval_seconds = 60;  // CheckpointDue() after this long since the last one
  std::function<void(const v1::JobEvent::Progress&)> on_progress;  // every step
  std::function<void(v1::JobEvent::Log::Level, const std::string&)> on_log;
  const std::atomic<bool>* cancel = nullptr;    // Step() returns CANCELLED once it is true
  const std::atomic<bool>* shutdown = nullptr;  // same, but as SIGTERM: the engine checkpoints first
};

class LocalJobContext : public JobContext {
 public:
  explicit LocalJobContext(LocalJobOptions options);

  const std::string& job_id() const override { return options_.job_id; }
  int attempt() const override { return 1; }
  const v1::JobSpec& spec() const override { return options_.spec; }
  absl::Status Step(const StepReport& report) override;
  StopReason stop_reason() const override { return stop_; }
  absl::Status Preview(const std::string& png, int view, v1::Stage stage, int step) override;
  void Log(v1::JobEvent::Log::Level level, const std::string& message) override;
  bool CheckpointDue() const override;
  absl::Status SaveCheckpoint(const std::string& bytes, int step) override;
  absl::Status PutArtifact(const std::string& name, const std::string& bytes, const std::string& content_type) override;

  int steps() const { return steps_; }              // Step() calls so far
  int previews() const { return previews_; }        // previews written
  int checkpoints() const { return checkpoints_; }  // checkpoints written

 private:
  LocalJobOptions options_;
  StopReason stop_ = StopReason::kNone;
  int steps_ = 0, previews_ = 0, checkpoints_ = 0;
  double last_checkpoint_ = 0;  // steady-clock seconds
};

}  // namespace psd3d
