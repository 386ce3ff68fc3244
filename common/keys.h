// Redis key names. Must agree with common/lua/prelude.lua, which builds the same names inside scripts.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"

namespace psd3d {

class Keys {
 public:
  explicit Keys(std::string prefix = "psd3d:") : p_(std::move(prefix)) {}
  const std::string& prefix() const { return p_; }

  std::string Job(absl::string_view id) const { return absl::StrCat(p_, "job:", id); }
  std::string Events(absl::string_view id) const { return absl::StrCat(p_, "job:", id, ":ev"); }
  std::string Control(absl::string_view id) const { return absl::StrCat(p_, "job:", id, ":ctl"); }
  std::string Artifacts(absl::string_view id) const { return absl::StrCat(p_, "job:", id, ":art"); }
  std::string Blob(absl::string_view id, absl::string_view name) const {
    return absl::StrCat(p_, "job:", id, ":blob:", name);
  }
  std::string Queue() const { return p_ + "queue"; }
  std::string Delayed() const { return p_ + "delayed"; }
  std::string Leases() const { return p_ + "leases"; }
  std::string Index() const { return p_ + "index"; }
  std::string Dead() const { return p_ + "dead"; }
  std::string Notify() const { return p_ + "notify"; }
  std::string Stats() const { return p_ + "stats"; }
  // Live workers: member = worker name, score = heartbeat expiry (ms).
  std::string Workers() const { return p_ + "workers"; }
  // Recent successful job durations in seconds, per method and quality, for ETAs.
  std::string Durations(int method, int quality) const {
    return absl::StrCat(p_, "durations:", method, ":", quality);
  }

  static constexpr absl::string_view kCheckpoint = "@checkpoint";

 private:
  std::string p_;
};

// Settings every process touching the queue must agree on.
struct QueueConfig {
  std::string prefix = "psd3d:";
  int event_retention = 2000;          // events kept per job (stream MAXLEN)
  long long job_retention_s = 7 * 86400;  // finished jobs, their events and artifacts
  long long backoff_base_ms = 2000;    // retry after attempt n waits base * 2^(n-1) ...
  long long backoff_max_ms = 300000;   // ... capped here
};

}  // namespace psd3d
