// The worker runtime: claims jobs by priority then age, runs each through an Engine under a lease kept
// alive by a LeaseKeeper, and ends every attempt with exactly one fenced transition (succeeded,
// cancelled, retried, dead-lettered, or released on shutdown).
#pragma once

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/job_lease.h"
#include "worker/engine.h"
#include "worker/job_context.h"
#include "worker/lease_keeper.h"
#include "worker/worker_metrics.h"

namespace psd3d {

struct WorkerOptions {
  std::string name;  // unique per process; shown on the job while it runs
  LeaseKeeper::Options lease;
  RedisJobContext::Options context;
  absl::Duration idle_wait = absl::Seconds(1);  // longest sleep between claim attempts when idle
  int max_jobs = 0;                             // stop after this many attempts; 0: never
};

class WorkerRuntime {
 public:
  WorkerRuntime(JobLease* store, Engine* engine, WorkerMetrics* metrics, WorkerOptions options)
      : store_(store), engine_(engine), metrics_(metrics), options_(std::move(options)) {}

  // Claims and runs jobs until Shutdown(); then returns once the current job is checkpointed and
  // released.
  absl::Status Run();
  // Thread-safe: stop claiming; the running engine is told to checkpoint and stop.
  void Shutdown();

 private:
  void RunOne(const Lease& lease);
  JobLease* store_;
  Engine* engine_;
  WorkerMetrics* metrics_;
  WorkerOptions options_;
  std::atomic<bool> shutdown_{false};
  absl::Mutex mu_;
  LeaseKeeper* current_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace psd3d
