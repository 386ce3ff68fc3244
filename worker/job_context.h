// The JobContext the runtime hands an engine for one leased attempt: progress, previews, logs,
// checkpoints and artifacts go to Redis through fenced writes; stop requests come from the LeaseKeeper.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "common/job_lease.h"
#include "worker/engine.h"
#include "worker/lease_keeper.h"
#include "worker/worker_metrics.h"

namespace psd3d {

class RedisJobContext : public JobContext {
 public:
  struct Options {
    absl::Duration progress_interval = absl::Milliseconds(250);  // at most one progress event per interval
    absl::Duration checkpoint_interval = absl::Minutes(5);
  };
  RedisJobContext(JobLease* store, const Lease* lease, LeaseKeeper* keeper, WorkerMetrics* metrics,
                  Options options);

  const std::string& job_id() const override { return lease_->job_id; }
  int attempt() const override { return lease_->attempt; }
  const v1::JobSpec& spec() const override { return lease_->request.spec(); }
  absl::Status Step(const StepReport& report) override;
  StopReason stop_reason() const override { return keeper_->stop_reason(); }
  absl::Status Preview(const std::string& png, int view, v1::Stage stage, int step) override;
  void Log(v1::JobEvent::Log::Level level, const std::string& message) override;
  bool CheckpointDue() const override;
  absl::Status SaveCheckpoint(const std::string& bytes, int step) override;
  absl::Status PutArtifact(const std::string& name, const std::string& bytes,
                           const std::string& content_type) override;

  // Writes the latest progress if the rate limit held it back.
  absl::Status FlushProgress();
  // Where the engine last was, for error context.
  const StepReport& last_report() const { return last_; }

 private:
  absl::Status StopStatus() const;
  // Maps a fenced call's result onto the stop state.
  absl::Status Observe(const absl::StatusOr<LeaseState>& r);
  absl::Status WriteProgress(const StepReport& r);

  JobLease* store_;
  const Lease* lease_;
  LeaseKeeper* keeper_;
  WorkerMetrics* metrics_;
  Options options_;
  absl::Time started_;
  absl::Time last_progress_ = absl::InfinitePast();
  absl::Time last_checkpoint_;
  StepReport pending_;
  StepReport last_;
  bool has_pending_ = false;
  v1::Stage last_stage_ = v1::STAGE_UNSPECIFIED;
};

}  // namespace psd3d
