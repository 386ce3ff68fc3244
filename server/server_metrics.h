// Prometheus metrics of the front server. Queue-wide figures (depth, running, outcomes, redeliveries)
// are read from Redis by the housekeeping loop, so every server replica reports the same totals.
#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/job_queue.h"
#include "psd3d/v1/generation.pb.h"

namespace prometheus {
class Registry;
}

namespace psd3d {

class ServerMetrics {
 public:
  explicit ServerMetrics(prometheus::Registry& registry);
  ~ServerMetrics();
  // result: "accepted", "duplicate", "invalid", "rejected_full", "error"
  void Submitted(v1::JobSpec::Method method, const std::string& result);
  void SetSubscribers(int n);
  // Total XREAD/XRANGE calls the watch fan-out made (WatchHub::redis_reads()); grows with event
  // batches, not with watchers.
  void SetWatchReads(long long total);
  void SetQueue(const JobQueue::Depth& depth);
  // Totals kept in Redis (HGETALL <prefix>stats); counters advance by the difference.
  void SetTotals(const absl::flat_hash_map<std::string, std::string>& stats);
  void Rpc(const std::string& method, const std::string& code, double seconds);
  // API-token authentication (server/auth.h). reason: "missing", "malformed" or "invalid". Calls
  // rejected there never reach a handler, so psd3d_rpc_seconds does not count them.
  void AuthFailure(const std::string& reason);
  // A call authenticated with the token named `token` (its name in the tokens file, never the token).
  void Authenticated(const std::string& token);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
