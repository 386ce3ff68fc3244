// Prometheus metrics a worker exports (names from docs/operations.md; no job ids as labels).
#pragma once

#include <memory>
#include <string>

#include "psd3d/v1/generation.pb.h"

namespace prometheus {
class Registry;
}

namespace psd3d {

class WorkerMetrics {
 public:
  explicit WorkerMetrics(prometheus::Registry& registry);
  ~WorkerMetrics();
  void QueueWait(double seconds);
  void JobFinished(v1::JobSpec::Method method, const std::string& outcome, double seconds);
  void LeaseRenewFailure();
  void EngineStep(v1::Stage stage, double seconds);
  void SetBusy(bool busy);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
