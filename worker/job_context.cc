#include "worker/job_context.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/job_codec.h"
#include "google/protobuf/util/time_util.h"

namespace psd3d {

RedisJobContext::RedisJobContext(JobLease* store, const Lease* lease, LeaseKeeper* keeper, WorkerMetrics* metrics,
                                 Options options)
    : store_(store),
      lease_(lease),
      keeper_(keeper),
      metrics_(metrics),
      options_(options),
      started_(absl::Now()),
      last_checkpoint_(absl::Now()) {}

absl::Status RedisJobContext::StopStatus() const {
  switch (keeper_->stop_reason()) {
    case StopReason::kNone: return absl::OkStatus();
    case StopReason::kCancelled: return absl::CancelledError(absl::StrCat("job ", job_id(), ": cancelled"));
    case StopReason::kShutdown: return absl::CancelledError(absl::StrCat("job ", job_id(), ": worker shutting down"));
    case StopReason::kLeaseLost: return absl::AbortedError(absl::StrCat("job ", job_id(), ": lease lost"));
  }
  return absl::OkStatus();
}

absl::Status RedisJobContext::Observe(const absl::StatusOr<LeaseState>& r) {
  if (r.ok()) {
    if (r->cancel_requested) keeper_->RequestStop(StopReason::kCancelled);
    return absl::OkStatus();
  }
  if (r.status().code() == absl::StatusCode::kAborted) keeper_->RequestStop(StopReason::kLeaseLost);
  return r.status();
}

absl::Status RedisJobContext::WriteProgress(const StepReport& r) {
  v1::JobEvent::Progress p = ToProgress(r);
  double elapsed = absl::ToDoubleSeconds(absl::Now() - started_);
  if (r.progress > 0.01f) {
    double eta = elapsed * (1.0 - r.progress) / r.progress;
    *p.mutable_eta() = google::protobuf::util::TimeUtil::MillisecondsToDuration(static_cast<long long>(eta * 1000));
  }
  last_progress_ = absl::Now();
  has_pending_ = false;
  return Observe(store_->Emit(*lease_, ProgressJobFields(p), ProgressEventFields(p)));
}

absl::Status RedisJobContext::Step(const StepReport& r) {
  last_ = r;
  if (metrics_ && r.step_seconds > 0) metrics_->EngineStep(r.stage, r.step_seconds);
  if (auto s = StopStatus(); !s.ok()) return s;
  const bool boundary = r.stage != last_stage_ || r.step == r.total_steps;
  last_stage_ = r.stage;
  if (boundary || absl::Now() - last_progress_ >= options_.progress_interval) {
    if (auto s = WriteProgress(r); !s.ok()) return s;
  } else {
    pending_ = r;
    has_pending_ = true;
  }
  return StopStatus();
}

absl::Status RedisJobContext::FlushProgress() {
  if (!has_pending_) return absl::OkStatus();
  return WriteProgress(pending_);
}

absl::Status RedisJobContext::Preview(const std::string& png, int view, v1::Stage stage, int step) {
  if (auto s = StopStatus(); !s.ok() && keeper_->stop_reason() == StopReason::kLeaseLost) return s;
  v1::JobEvent::Preview p;
  p.set_png(png);
  p.set_view(view);
  p.set_stage(stage);
  p.set_step(step);
  return Observe(store_->Emit(*lease_, {}, PreviewEventFields(p)));
}

void RedisJobContext::Log(v1::JobEvent::Log::Level level, const std::string& message) {
  v1::JobEvent::Log l;
  l.set_level(level);
  l.set_message(message);
  (void)Observe(store_->Emit(*lease_, {}, LogEventFields(l)));
}

bool RedisJobContext::CheckpointDue() const { return absl::Now() - last_checkpoint_ >= options_.checkpoint_interval; }

absl::Status RedisJobContext::SaveCheckpoint(const std::string& bytes, int step) {
  auto s = store_->PutBlob(*lease_, std::string(Keys::kCheckpoint), bytes, "application/octet-stream", step);
  if (s.code() == absl::StatusCode::kAborted) keeper_->RequestStop(StopReason::kLeaseLost);
  if (s.ok()) last_checkpoint_ = absl::Now();
  return s;
}

absl::Status RedisJobContext::PutArtifact(const std::string& name, const std::string& bytes,
                                          const std::string& content_type) {
  auto s = store_->PutBlob(*lease_, name, bytes, content_type);
  if (s.code() == absl::StatusCode::kAborted) keeper_->RequestStop(StopReason::kLeaseLost);
  return s;
}

}  // namespace psd3d
