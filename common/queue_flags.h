// Flags shared by every process that talks to the queue (server and workers): where Redis is and the
// settings they must agree on. The Redis password comes from $PSD3D_REDIS_PASSWORD, never a flag.
#pragma once

#include <string>

#include "absl/flags/declare.h"
#include "common/keys.h"
#include "common/redis_client.h"

ABSL_DECLARE_FLAG(std::string, redis);
ABSL_DECLARE_FLAG(std::string, redis_prefix);
ABSL_DECLARE_FLAG(int, event_retention);
ABSL_DECLARE_FLAG(int64_t, job_retention_seconds);

namespace psd3d {

RedisOptions RedisOptionsFromFlags();
QueueConfig QueueConfigFromFlags();
// Shows only psd3d's own flags in --help (Abseil's internal flags stay under --helpfull).
void ConfigureFlagsUsage(const char* usage);
// Applies --log_level; returns false (after printing) on a bad value.
bool ApplyLogLevel(const std::string& level);

}  // namespace psd3d
