// Front-side operations on the durable job queue in Redis: submit, get, list, cancel, housekeeping and
// artifact reads. Every state change is one Lua script (common/lua/), so it is atomic.
#pragma once

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "common/keys.h"
#include "common/redis_client.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

class JobQueue {
 public:
  JobQueue(RedisPool* pool, QueueConfig config) : pool_(pool), config_(std::move(config)), keys_(config_.prefix) {}
  const QueueConfig& config() const { return config_; }
  const Keys& keys() const { return keys_; }

  struct SubmitLimits {
    int max_attempts = 3;
    long long max_queue = 10000;  // queued + waiting for retry
  };
  struct Submitted {
    std::string id;
    bool existed = false;  // an earlier submit with the same request_id
  };
  // `req` must be validated and have defaults applied; `fingerprint` identifies its content for the
  // request_id check. RESOURCE_EXHAUSTED when full; ALREADY_EXISTS when the request_id names a job
  // with different content.
  absl::StatusOr<Submitted> Submit(const v1::SubmitJobRequest& req, const std::string& fingerprint,
                                   const SubmitLimits& limits);

  // NOT_FOUND for unknown or expired ids. Fills queue position and ETA.
  absl::StatusOr<v1::Job> Get(const std::string& id);
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& req);
  absl::StatusOr<v1::Job> Cancel(const std::string& id);

  struct Housekeeping {
    long long promoted = 0, redelivered = 0, failed = 0, cancelled = 0;
  };
  // Moves due retries into the queue and recovers expired leases.
  absl::StatusOr<Housekeeping> Promote(int limit = 200);

  struct Depth {
    std::array<long long, 10> queued_by_priority{};
    long long waiting_retry = 0;
    long long running = 0;  // RUNNING or CANCELLING (leased)
    long long live_workers = 0;
  };
  absl::StatusOr<Depth> QueueDepth();

  absl::StatusOr<v1::Artifact> GetArtifact(const std::string& id, const std::string& name);
  // Reads [offset, offset + length) of an artifact; short at the end.
  absl::StatusOr<std::string> ReadArtifact(const std::string& id, const std::string& name, long long offset,
                                           long long length);

 private:
  RedisPool* pool_;
  QueueConfig config_;
  Keys keys_;
};

}  // namespace psd3d
