#include "server/server_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"

namespace psd3d {

struct ServerMetrics::Impl {
  explicit Impl(prometheus::Registry& r)
      : submitted(prometheus::BuildCounter().Name("psd3d_jobs_submitted_total").Help("SubmitJob calls by method and result").Register(r)),
        depth(prometheus::BuildGauge().Name("psd3d_queue_depth").Help("Jobs waiting to run, by priority").Register(r)),
        retry_wait(prometheus::BuildGauge().Name("psd3d_jobs_waiting_retry").Help("Jobs waiting out a retry backoff").Register(r).Add({})),
        running(prometheus::BuildGauge().Name("psd3d_jobs_running").Help("Jobs leased to a worker (RUNNING or CANCELLING)").Register(r).Add({})),
        workers(prometheus::BuildGauge().Name("psd3d_workers_live").Help("Workers with a fresh heartbeat").Register(r).Add({})),
        subscribers(prometheus::BuildGauge().Name("psd3d_stream_subscribers").Help("Open WatchJob streams on this server").Register(r).Add({})),
        watch_reads(prometheus::BuildCounter().Name("psd3d_watch_redis_reads_total").Help("Redis reads made by the WatchJob fan-out (one per event batch, whatever the number of watchers)").Register(r).Add({})),
        outcomes(prometheus::BuildCounter().Name("psd3d_job_outcomes_total").Help("Jobs reaching a terminal state, queue-wide").Register(r)),
        redeliveries(prometheus::BuildCounter().Name("psd3d_redeliveries_total").Help("Jobs put back in the queue after a lost lease or failed attempt, queue-wide").Register(r).Add({})),
        rpc(prometheus::BuildHistogram().Name("psd3d_rpc_seconds").Help("Unary RPC latency by method and status code").Register(r)),
        auth_failures(prometheus::BuildCounter().Name("psd3d_auth_failures_total").Help("Calls rejected UNAUTHENTICATED by API-token authentication, by reason").Register(r)),
        authenticated(prometheus::BuildCounter().Name("psd3d_authenticated_calls_total").Help("Calls accepted by API-token authentication, by token name").Register(r)) {
    // Exported as 0 from the start (also without authentication), so rate() and alerts see the series.
    for (const char* reason : {"missing", "malformed", "invalid"}) auth_failures.Add({{"reason", reason}});
  }
  prometheus::Family<prometheus::Counter>& submitted;
  prometheus::Family<prometheus::Gauge>& depth;
  prometheus::Gauge& retry_wait;
  prometheus::Gauge& running;
  prometheus::Gauge& workers;
  prometheus::Gauge& subscribers;
  prometheus::Counter& watch_reads;
  prometheus::Family<prometheus::Counter>& outcomes;
  prometheus::Counter& redeliveries;
  prometheus::Family<prometheus::Histogram>& rpc;
  prometheus::Family<prometheus::Counter>& auth_failures;
  prometheus::Family<prometheus::Counter>& authenticated;
  absl::Mutex mu;
  absl::flat_hash_map<std::string, double> seen ABSL_GUARDED_BY(mu);
};

ServerMetrics::ServerMetrics(prometheus::Registry& registry) : impl_(std::make_unique<Impl>(registry)) {}
ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::Submitted(v1::JobSpec::Method method, const std::string& result) {
  impl_->submitted.Add({{"method", absl::AsciiStrToLower(v1::JobSpec::Method_Name(method))}, {"result", result}})
      .Increment();
}

void ServerMetrics::SetSubscribers(int n) { impl_->subscribers.Set(n); }

void ServerMetrics::SetWatchReads(long long total) {
  const double delta = static_cast<double>(total) - impl_->watch_reads.Value();
  if (delta > 0) impl_->watch_reads.Increment(delta);
}

void ServerMetrics::SetQueue(const JobQueue::Depth& d) {
  for (int p = 0; p < 10; ++p) impl_->depth.Add({{"priority", std::to_string(p)}}).Set(d.queued_by_priority[p]);
  impl_->retry_wait.Set(d.waiting_retry);
  impl_->running.Set(d.running);
  impl_->workers.Set(d.live_workers);
}

void ServerMetrics::SetTotals(const absl::flat_hash_map<std::string, std::string>& stats) {
  absl::MutexLock lock(&impl_->mu);
  for (const auto& [k, v] : stats) {
    double total = 0;
    if (!absl::SimpleAtod(v, &total)) continue;
    double& seen = impl_->seen[k];
    if (total <= seen) continue;
    double delta = total - seen;
    seen = total;
    if (absl::StartsWith(k, "outcome:")) {
      impl_->outcomes.Add({{"outcome", absl::AsciiStrToLower(k.substr(8))}}).Increment(delta);
    } else if (k == "redeliveries") {
      impl_->redeliveries.Increment(delta);
    }
  }
}

void ServerMetrics::Rpc(const std::string& method, const std::string& code, double seconds) {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1};
  impl_->rpc.Add({{"method", method}, {"code", code}}, *buckets).Observe(seconds);
}

void ServerMetrics::AuthFailure(const std::string& reason) {
  impl_->auth_failures.Add({{"reason", reason}}).Increment();
}

void ServerMetrics::Authenticated(const std::string& token) {
  impl_->authenticated.Add({{"token", token}}).Increment();
}

}  // namespace psd3d
