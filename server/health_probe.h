// A grpc.health.v1 client for container health checks (`psd3d-server --health_check`), so server
// images need no separate grpc_health_probe binary.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/time/time.h"

namespace psd3d {

// Where to reach a listener from the same host: the listen host, or loopback when it listens on every
// address (0.0.0.0, [::]).
std::string LoopbackTarget(const std::string& listen, int port);

// A channel to this host's own server at `target` (the health probe, the callback keepalive):
// plaintext when `tls_cert` is empty, else TLS WITHOUT certificate verification. The server's
// certificate names the host its clients dial (a Service or public name), not loopback, and these
// channels send no credential and only read health status, so verification would protect nothing and
// could only fail. They do present that certificate's first DNS name as the server name (SNI), so the
// server does not log a name mismatch for every probe.
std::shared_ptr<grpc::Channel> LoopbackChannel(const std::string& target, const std::string& tls_cert);

// Checks `service` ("" = the whole server) at `target`, over TLS when `tls_cert` (the server's
// --tls_cert) is set. Returns 0 when SERVING, 1 otherwise (NOT_SERVING, unreachable, timeout),
// printing one line that says which.
int ProbeHealth(const std::string& target, const std::string& service, absl::Duration timeout,
                const std::string& tls_cert = "");

}  // namespace psd3d
