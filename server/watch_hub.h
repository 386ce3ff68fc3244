// Fan-out of job event streams to WatchJob subscribers. One thread follows every watched job with a
// single blocking XREAD over all their streams, decodes each event once and hands it to every
// subscriber of that job: the Redis cost is one read per event batch, whatever the number of watchers.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/event_log.h"
#include "common/redis_client.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

using EventPtr = std::shared_ptr<const v1::JobEvent>;

// Implemented by each WatchJob stream. Called from the hub thread; must not block.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Events in order, all strictly after the subscriber's cursor. The last call for a finished job
  // ends with the terminal state event.
  virtual void OnEvents(const std::vector<EventPtr>& events, bool terminal) = 0;
  // The watch cannot continue (bad cursor, job gone, server stopping).
  virtual void OnError(const absl::Status& status) = 0;
};

class WatchHub {
 public:
  WatchHub(RedisPool* pool, Keys keys);
  ~WatchHub();

  // Validates the cursor, replays and then follows the job for `sink`, which stays registered until
  // it gets its terminal event, an error, or Remove.
  void Add(const std::string& job_id, const std::string& after_cursor, WatchSink* sink);
  // After Remove returns the hub never calls `sink` again.
  void Remove(WatchSink* sink);
  // Ends every stream with UNAVAILABLE (clients resume from their cursor elsewhere) and stops.
  void Shutdown();

  int subscribers() const;
  long long redis_reads() const;  // XREAD/XRANGE calls made, for tests and benchmarks

 private:
  struct Sub {
    WatchSink* sink;
    std::string skip_through;  // events up to this id were already delivered to this sink
  };
  struct Followed {
    std::string cursor;  // last id read from the stream
    std::vector<Sub> subs;
  };
  struct Pending {
    std::string job_id, cursor;
    WatchSink* sink;
  };
  void Loop();
  void Wake();
  void Register(RedisConnection& conn, const Pending& p);
  void Deliver(const std::string& job_id, Followed& f, const std::vector<EventPtr>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<EventPtr>> Range(RedisConnection& conn, const std::string& job_id,
                                              const std::string& after, const std::string& through);

  RedisPool* pool_;
  Keys keys_;
  EventLog log_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Followed> followed_ ABSL_GUARDED_BY(mu_);
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  int subscribers_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  long long reader_client_id_ ABSL_GUARDED_BY(mu_) = -1;
  std::atomic<long long> reads_{0};
  std::thread thread_;
};

}  // namespace psd3d
