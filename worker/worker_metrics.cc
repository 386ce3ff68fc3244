#include "worker/worker_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/ascii.h"
#include "common/stage_names.h"

namespace psd3d {
namespace {

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

}  // namespace

struct WorkerMetrics::Impl {
  explicit Impl(prometheus::Registry& r)
      : queue_wait(prometheus::BuildHistogram()
                       .Name("psd3d_queue_wait_seconds")
                       .Help("Time from submit (or retry) to claim")
                       .Register(r)),
        duration(prometheus::BuildHistogram()
                     .Name("psd3d_job_duration_seconds")
                     .Help("Wall time of one attempt, claim to end")
                     .Register(r)),
        outcomes(prometheus::BuildCounter()
                     .Name("psd3d_worker_attempts_total")
                     .Help("Attempts this worker ended, by outcome")
                     .Register(r)),
        renew_failures(prometheus::BuildCounter()
                           .Name("psd3d_lease_renew_failures_total")
                           .Help("Lease renewals that failed (Redis unreachable or slow)")
                           .Register(r)
                           .Add({})),
        step(prometheus::BuildHistogram()
                 .Name("psd3d_engine_step_seconds")
                 .Help("Optimization step time by stage")
                 .Register(r)),
        busy(prometheus::BuildGauge().Name("psd3d_worker_busy").Help("1 while running a job").Register(r).Add({})) {}

  prometheus::Family<prometheus::Histogram>& queue_wait;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Counter>& outcomes;
  prometheus::Counter& renew_failures;
  prometheus::Family<prometheus::Histogram>& step;
  prometheus::Gauge& busy;
};

namespace {
const prometheus::Histogram::BucketBoundaries& WaitBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400};
  return *b;
}
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* b =
      new prometheus::Histogram::BucketBoundaries{1, 5, 15, 60, 180, 600, 1800, 3600, 7200, 14400, 43200};
  return *b;
}
const prometheus::Histogram::BucketBoundaries& StepBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  return *b;
}
}  // namespace

WorkerMetrics::WorkerMetrics(prometheus::Registry& registry) : impl_(std::make_unique<Impl>(registry)) {}
WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::QueueWait(double s) { impl_->queue_wait.Add({}, WaitBuckets()).Observe(s); }

void WorkerMetrics::JobFinished(v1::JobSpec::Method method, const std::string& outcome, double s) {
  std::string m = Lower(v1::JobSpec::Method_Name(method));
  impl_->duration.Add({{"method", m}, {"outcome", outcome}}, DurationBuckets()).Observe(s);
  impl_->outcomes.Add({{"outcome", outcome}}).Increment();
}

void WorkerMetrics::LeaseRenewFailure() { impl_->renew_failures.Increment(); }

void WorkerMetrics::EngineStep(v1::Stage stage, double s) {
  impl_->step.Add({{"stage", StageWord(stage)}}, StepBuckets()).Observe(s);
}

void WorkerMetrics::SetBusy(bool busy) { impl_->busy.Set(busy ? 1 : 0); }

}  // namespace psd3d
