// A grpc.health.v1 client for container health checks (`psd3d-server --health_check`), so server
// images need no separate grpc_health_probe binary.
#pragma once

#include <string>

#include "absl/time/time.h"

namespace psd3d {

// Where to reach a listener from the same host: the listen host, or loopback when it listens on every
// address (0.0.0.0, [::]).
std::string LoopbackTarget(const std::string& listen, int port);

// Checks `service` ("" = the whole server) at `target`. Returns 0 when SERVING, 1 otherwise (NOT_SERVING,
// unreachable, timeout), printing one line that says which.
int ProbeHealth(const std::string& target, const std::string& service, absl::Duration timeout);

}  // namespace psd3d
