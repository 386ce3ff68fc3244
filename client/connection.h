// How the CLI reaches the server: plaintext or TLS (--tls, --tls_ca, --tls_server_name) and the API
// token from $PSD3D_API_TOKEN. The token is attached to the channel as call credentials, so every
// call made on it (unary, WatchJob and its reconnects, DownloadArtifact) carries
// "authorization: Bearer <token>", and gRPC sends call credentials over TLS only.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace psd3d::cli {

// Read from the environment, never a flag: flags show in `ps` and shell history.
inline constexpr char kApiTokenEnv[] = "PSD3D_API_TOKEN";

struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  bool tls = false;
  bool token = false;  // $PSD3D_API_TOKEN is sent on every call
};

// The channel to `server` the flags and the environment describe. INVALID_ARGUMENT for a bad
// combination (--tls_server_name without TLS), an unreadable --tls_ca, or a token that cannot be a
// header value. With a token but no TLS it prints a warning: the token is not sent.
absl::StatusOr<Connection> Connect(const std::string& server);

}  // namespace psd3d::cli
