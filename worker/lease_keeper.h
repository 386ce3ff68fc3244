// Keeps a job's lease alive from its own thread, independent of the compute loop, and listens on the
// job's control list so a cancel reaches the engine within one step.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/job_lease.h"
#include "worker/engine.h"

namespace psd3d {

class LeaseKeeper {
 public:
  struct Options {
    absl::Duration lease_time = absl::Seconds(30);
    absl::Duration renew_interval = absl::Seconds(10);
  };
  // `on_renew_failure` is called for each failed renewal attempt (for metrics).
  LeaseKeeper(JobLease* store, const Lease* lease, Options options, std::function<void()> on_renew_failure);
  ~LeaseKeeper();  // stops the thread

  StopReason stop_reason() const { return static_cast<StopReason>(reason_.load()); }
  // Sets a reason unless one is already set (the first reason wins).
  void RequestStop(StopReason reason);

 private:
  void Loop();
  JobLease* store_;
  const Lease* lease_;
  Options options_;
  std::function<void()> on_renew_failure_;
  std::atomic<int> reason_{static_cast<int>(StopReason::kNone)};
  absl::Notification done_;
  std::thread thread_;
};

}  // namespace psd3d
