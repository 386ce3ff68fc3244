#include "worker/runtime.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace psd3d {
namespace {

bool Permanent(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kUnimplemented || code == absl::StatusCode::kNotFound;
}

}  // namespace

void WorkerRuntime::Shutdown() {
  shutdown_.store(true);
  absl::MutexLock lock(&mu_);
  if (current_) current_->RequestStop(StopReason::kShutdown);
}

absl::Status WorkerRuntime::Run() {
  int done = 0;
  absl::Time next_heartbeat = absl::InfinitePast();
  absl::Duration retry_wait = absl::Milliseconds(200);
  while (!shutdown_.load()) {
    if (absl::Now() >= next_heartbeat) {
      if (store_->Heartbeat(options_.name, options_.lease.lease_time).ok()) {
        next_heartbeat = absl::Now() + options_.lease.renew_interval;
      }
    }
    auto claimed = store_->Claim(options_.name, options_.lease.lease_time);
    if (!claimed.ok()) {
      PSD3D_LOG(kWarning, "worker", "claim failed", {{"error", std::string(claimed.status().message())}});
      absl::SleepFor(retry_wait);
      retry_wait = std::min(retry_wait * 2, absl::Seconds(5));
      continue;
    }
    retry_wait = absl::Milliseconds(200);
    if (!claimed->has_value()) {
      auto conn = store_->pool()->Acquire();
      if (conn.ok()) (void)store_->WaitForWork(**conn, options_.idle_wait);
      else absl::SleepFor(options_.idle_wait);
      continue;
    }
    RunOne(**claimed);
    if (options_.max_jobs > 0 && ++done >= options_.max_jobs) break;
  }
  return absl::OkStatus();
}

void WorkerRuntime::RunOne(const Lease& lease) {
  const absl::Time start = absl::Now();
  const auto& spec = lease.request.spec();
  PSD3D_LOG(kInfo, "worker", "claimed", {{"job", lease.job_id}, {"attempt", absl::StrCat(lease.attempt)}});
  if (metrics_) {
    metrics_->SetBusy(true);
    metrics_->QueueWait(std::max(0.0, (absl::ToUnixMillis(start) - lease.enqueued_ms) / 1000.0));
  }
  LeaseKeeper keeper(store_, &lease, options_.lease, [this] {
    if (metrics_) metrics_->LeaseRenewFailure();
  });
  {
    absl::MutexLock lock(&mu_);
    current_ = &keeper;
    if (shutdown_.load()) keeper.RequestStop(StopReason::kShutdown);
  }
  RedisJobContext ctx(store_, &lease, &keeper, metrics_, options_.context);

  std::string checkpoint;
  bool have_checkpoint = false;
  absl::Status status;
  if (lease.has_checkpoint) {
    auto c = store_->GetCheckpoint(lease.job_id);
    if (c.ok()) {
      checkpoint = *std::move(c);
      have_checkpoint = true;
    } else {
      PSD3D_LOG(kWarning, "worker", "checkpoint unreadable; starting over",
                {{"job", lease.job_id}, {"error", std::string(c.status().message())}});
    }
  }
  try {
    status = engine_->Run(ctx, have_checkpoint ? &checkpoint : nullptr);
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("engine threw: ", e.what()));
  }
  if (status.ok()) status = ctx.FlushProgress();
  {
    absl::MutexLock lock(&mu_);
    current_ = nullptr;
  }

  const StopReason reason = keeper.stop_reason();
  std::string outcome;
  absl::Status end;
  if (reason == StopReason::kLeaseLost || status.code() == absl::StatusCode::kAborted) {
    outcome = "lease_lost";  // another worker owns the job now; write nothing
  } else if (status.ok()) {
    outcome = "succeeded";
    end = store_->Finish(lease, v1::Job::SUCCEEDED, "completed");
    if (end.ok()) (void)store_->RecordDuration(spec, absl::ToDoubleSeconds(absl::Now() - start));
  } else if (reason == StopReason::kCancelled) {
    outcome = "cancelled";
    end = store_->Finish(lease, v1::Job::CANCELLED, "cancelled on request");
  } else if (reason == StopReason::kShutdown) {
    outcome = "released";
    auto r = store_->Release(lease, absl::StrCat("released by ", options_.name, " (shutdown)"));
    end = r.status();
  } else {
    const StepReport& at = ctx.last_report();
    v1::JobError err;
    err.set_code(absl::StatusCodeToString(status.code()));
    err.set_message(absl::StrCat("job ", lease.job_id, ", ", v1::Stage_Name(at.stage), " step ", at.step, ": ",
                                 status.message()));
    err.set_stage(at.stage);
    err.set_step(at.step);
    if (Permanent(status.code())) {
      outcome = "failed";
      end = store_->Finish(lease, v1::Job::FAILED, "engine error (not retryable)", &err);
    } else {
      auto r = store_->Retry(lease, err);
      outcome = r.ok() && *r == v1::Job::FAILED ? "failed" : "retried";
      end = r.status();
    }
    PSD3D_LOG(kWarning, "worker", "attempt failed", {{"job", lease.job_id}, {"error", err.message()}});
  }
  if (!end.ok()) {
    if (end.code() == absl::StatusCode::kAborted) outcome = "lease_lost";
    PSD3D_LOG(kWarning, "worker", "could not record the attempt's end",
              {{"job", lease.job_id}, {"error", std::string(end.message())}});
  }
  PSD3D_LOG(kInfo, "worker", "attempt ended", {{"job", lease.job_id}, {"outcome", outcome}});
  if (metrics_) {
    metrics_->JobFinished(spec.method(), outcome, absl::ToDoubleSeconds(absl::Now() - start));
    metrics_->SetBusy(false);
  }
}

}  // namespace psd3d
