// Reading a job's event log (a Redis stream; stream ids are the cursors clients hold).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/keys.h"
#include "common/redis_client.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

class EventLog {
 public:
  explicit EventLog(Keys keys) : keys_(std::move(keys)) {}

  // Resolves a client cursor to the stream id to read after. Empty → "0-0" (oldest retained).
  // NOT_FOUND: no such job; INVALID_ARGUMENT: malformed or beyond the newest event; OUT_OF_RANGE:
  // events after the cursor were already dropped by retention.
  absl::StatusOr<std::string> CheckCursor(RedisConnection& conn, const std::string& job_id,
                                          const std::string& cursor) const;

  // Up to `count` events strictly after `after`, oldest first.
  absl::StatusOr<std::vector<v1::JobEvent>> ReadAfter(RedisConnection& conn, const std::string& job_id,
                                                      const std::string& after, int count) const;

  static bool IsTerminalEvent(const v1::JobEvent& ev);

 private:
  Keys keys_;
};

}  // namespace psd3d
