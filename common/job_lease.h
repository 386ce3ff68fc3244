// Worker-side operations on a leased job. Every write is fenced: the Lua script checks that the caller
// still holds the lease token, so a worker that lost its lease can neither complete nor corrupt a job.
// A fenced call on a lost lease returns ABORTED ("lease lost").
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/job_codec.h"
#include "common/keys.h"
#include "common/redis_client.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

struct Lease {
  std::string job_id;
  std::string token;  // fencing token
  int attempt = 0;
  v1::SubmitJobRequest request;
  bool has_checkpoint = false;
  long long enqueued_ms = 0;
};

// What the holder learns on each fenced call.
struct LeaseState {
  bool cancel_requested = false;
};

class JobLease {
 public:
  JobLease(RedisPool* pool, QueueConfig config) : pool_(pool), config_(std::move(config)), keys_(config_.prefix) {}
  const Keys& keys() const { return keys_; }
  const QueueConfig& config() const { return config_; }

  // Recovers expired leases and due retries, then claims the best queued job, if any.
  absl::StatusOr<std::optional<Lease>> Claim(const std::string& worker, absl::Duration lease_time);
  // Blocks up to `wait` for a submit notification (so idle workers claim without polling delay).
  absl::Status WaitForWork(RedisConnection& conn, absl::Duration wait);
  absl::Status Heartbeat(const std::string& worker, absl::Duration ttl);
  // Blocks up to `wait` on the job's control list; true when a cancel message arrived.
  absl::StatusOr<bool> WaitForCancel(RedisConnection& conn, const std::string& job_id, absl::Duration wait);
  RedisPool* pool() { return pool_; }

  absl::StatusOr<LeaseState> Renew(const Lease& lease, absl::Duration lease_time);
  // Updates job fields (e.g. the latest progress) and appends one event; either may be empty.
  absl::StatusOr<LeaseState> Emit(const Lease& lease, const FieldList& job_fields, const FieldList& event);
  // Stores a blob in chunks and publishes it atomically. Artifacts get an artifact-ready event; the
  // checkpoint (name Keys::kCheckpoint) replaces the previous one.
  absl::Status PutBlob(const Lease& lease, const std::string& name, const std::string& data,
                       const std::string& content_type, int step = 0);
  absl::StatusOr<std::string> GetCheckpoint(const std::string& job_id);

  absl::Status Finish(const Lease& lease, v1::Job::State state, const std::string& reason,
                      const v1::JobError* error = nullptr);
  // Hands the job back after a retryable failure; returns the job's new state.
  absl::StatusOr<v1::Job::State> Retry(const Lease& lease, const v1::JobError& error);
  // Graceful hand-back on shutdown; does not spend an attempt.
  absl::StatusOr<v1::Job::State> Release(const Lease& lease, const std::string& reason);
  // Records a successful run's duration for ETAs.
  absl::Status RecordDuration(const v1::JobSpec& spec, double seconds);

  static constexpr long long kChunk = 1 << 20;

 private:
  absl::StatusOr<RedisReply> Fenced(const RedisScript& script, const Lease& lease,
                                    const std::vector<absl::string_view>& args);
  RedisPool* pool_;
  QueueConfig config_;
  Keys keys_;
};

}  // namespace psd3d
