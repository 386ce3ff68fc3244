#include "worker/lease_keeper.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace psd3d {

LeaseKeeper::LeaseKeeper(JobLease* store, const Lease* lease, Options options,
                         std::function<void()> on_renew_failure)
    : store_(store), lease_(lease), options_(options), on_renew_failure_(std::move(on_renew_failure)) {
  thread_ = std::thread([this] { Loop(); });
}

LeaseKeeper::~LeaseKeeper() {
  done_.Notify();
  thread_.join();
}

void LeaseKeeper::RequestStop(StopReason reason) {
  int expected = static_cast<int>(StopReason::kNone);
  reason_.compare_exchange_strong(expected, static_cast<int>(reason));
}

void LeaseKeeper::Loop() {
  absl::Time last_ok = absl::Now();
  absl::Time next_renew = absl::Now() + options_.renew_interval;
  // The BLPOP wait bounds how quickly the thread notices it should end; keep it short.
  const absl::Duration poll = std::min(options_.renew_interval, absl::Milliseconds(250));
  std::optional<RedisPool::Handle> conn;
  while (!done_.HasBeenNotified()) {
    if (!conn || (*conn)->broken()) {
      conn.reset();
      auto c = store_->pool()->Acquire();
      if (!c.ok()) {
        absl::SleepFor(poll);
      } else {
        conn.emplace(*std::move(c));
      }
    }
    if (conn) {
      auto cancel = store_->WaitForCancel(**conn, lease_->job_id, poll);
      if (cancel.ok() && *cancel) RequestStop(StopReason::kCancelled);
    }
    if (absl::Now() < next_renew || done_.HasBeenNotified()) continue;
    auto r = store_->Renew(*lease_, options_.lease_time);
    if (r.ok()) {
      last_ok = absl::Now();
      next_renew = last_ok + options_.renew_interval;
      if (r->cancel_requested) RequestStop(StopReason::kCancelled);
    } else if (r.status().code() == absl::StatusCode::kAborted) {
      PSD3D_LOG(kWarning, "lease", "lease lost", {{"job", lease_->job_id}, {"error", std::string(r.status().message())}});
      RequestStop(StopReason::kLeaseLost);
      return;
    } else {
      on_renew_failure_();
      PSD3D_LOG(kWarning, "lease", "renewal failed", {{"job", lease_->job_id}, {"error", std::string(r.status().message())}});
      next_renew = absl::Now() + absl::Seconds(1);
      // Past the lease time another worker may already own the job.
      if (absl::Now() - last_ok > options_.lease_time) {
        RequestStop(StopReason::kLeaseLost);
        return;
      }
    }
  }
}

}  // namespace psd3d
