#include "worker/local_job.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/stage_names.h"

namespace psd3d {
namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

LocalJobContext::LocalJobContext(LocalJobOptions options) : options_(std::move(options)), last_checkpoint_(Now()) {}

absl::Status LocalJobContext::Step(const StepReport& report) {
  ++steps_;
  if (options_.on_progress) options_.on_progress(ToProgress(report));
  if (options_.shutdown != nullptr && options_.shutdown->load()) {
    stop_ = StopReason::kShutdown;
    return absl::CancelledError(absl::StrCat("job ", options_.job_id, ": interrupted at step ", report.step));
  }
  if (options_.cancel != nullptr && options_.cancel->load()) {
    stop_ = StopReason::kCancelled;
    return absl::CancelledError(absl::StrCat("job ", options_.job_id, ": cancelled at step ", report.step));
  }
  return absl::OkStatus();
}

absl::Status LocalJobContext::Preview(const std::string& png, int /*view*/, v1::Stage stage, int step) {
  if (options_.preview_dir.empty()) return absl::OkStatus();
  const std::string named = absl::StrCat(options_.preview_dir, "/", StageWord(stage), "-", step, ".png");
  if (absl::Status s = WriteFileAtomically(named, png); !s.ok()) return s;
  ++previews_;
  return WriteFileAtomically(options_.preview_dir + "/latest.png", png);
}

void LocalJobContext::Log(v1::JobEvent::Log::Level level, const std::string& message) {
  if (options_.on_log) options_.on_log(level, message);
}

bool LocalJobContext::CheckpointDue() const {
  return !options_.checkpoint_path.empty() && Now() - last_checkpoint_ >= options_.checkpoint_interval_seconds;
}

absl::Status LocalJobContext::SaveCheckpoint(const std::string& bytes, int /*step*/) {
  if (options_.checkpoint_path.empty()) return absl::OkStatus();
  if (absl::Status s = WriteFileAtomically(options_.checkpoint_path, bytes); !s.ok()) return s;
  ++checkpoints_;
  last_checkpoint_ = Now();
  return absl::OkStatus();
}

absl::Status LocalJobContext::PutArtifact(const std::string& name, const std::string& bytes,
                                          const std::string& /*content_type*/) {
  if (name == "mesh.glb" && !options_.output_glb.empty()) return WriteFileAtomically(options_.output_glb, bytes);
  if (options_.preview_dir.empty()) return absl::OkStatus();
  return WriteFileAtomically(options_.preview_dir + "/" + name, bytes);
}

}  // namespace psd3d
