#include "common/queue_flags.h"

#include <cstdlib>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "common/log.h"

ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis address, host:port or unix:/path (password: $PSD3D_REDIS_PASSWORD)");
ABSL_FLAG(std::string, redis_prefix, "psd3d:", "Prefix of every Redis key (lets several deployments share one Redis)");
ABSL_FLAG(int, event_retention, 2000, "Events kept per job; older ones are dropped and resuming before them is OUT_OF_RANGE");
ABSL_FLAG(int64_t, job_retention_seconds, 7 * 86400, "How long finished jobs, their events and artifacts are kept");
ABSL_FLAG(int64_t, retry_backoff_ms, 2000, "Backoff before retry n is this times 2^(n-1)");
ABSL_FLAG(int64_t, retry_backoff_max_ms, 300000, "Upper bound of the retry backoff");

namespace psd3d {

RedisOptions RedisOptionsFromFlags() {
  RedisOptions o;
  o.address = absl::GetFlag(FLAGS_redis);
  if (const char* pw = std::getenv("PSD3D_REDIS_PASSWORD")) o.password = pw;
  return o;
}

QueueConfig QueueConfigFromFlags() {
  QueueConfig c;
  c.prefix = absl::GetFlag(FLAGS_redis_prefix);
  c.event_retention = absl::GetFlag(FLAGS_event_retention);
  c.job_retention_s = absl::GetFlag(FLAGS_job_retention_seconds);
  c.backoff_base_ms = absl::GetFlag(FLAGS_retry_backoff_ms);
  c.backoff_max_ms = absl::GetFlag(FLAGS_retry_backoff_max_ms);
  return c;
}

void ConfigureFlagsUsage(const char* usage) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "psd3d") || absl::StrContains(file, "common/") ||
           absl::StrContains(file, "server/") || absl::StrContains(file, "worker/") ||
           absl::StrContains(file, "client/") || absl::StrContains(file, "tests/") || absl::StrContains(file, "bench/");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.normalize_filename = [](absl::string_view f) { return std::string(f); };
  absl::SetFlagsUsageConfig(config);
}

bool ApplyLogLevel(const std::string& level) {
  LogLevel l;
  if (!ParseLogLevel(level, &l)) {
    std::cerr << "--log_level: '" << level << "' is not one of debug, info, warning, error\n";
    return false;
  }
  SetLogLevel(l);
  return true;
}

}  // namespace psd3d
