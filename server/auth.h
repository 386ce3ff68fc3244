// API-token authentication: every call except grpc.health.v1 and reflection must carry the metadata
// "authorization: Bearer <token>" with a token from ApiTokens, else it ends UNAUTHENTICATED.
//
// Why an AuthMetadataProcessor: gRPC 1.51 offers it and server interceptors. The processor runs in
// the transport's auth filter once a call's headers arrive, before the call is matched to a handler,
// so one check covers the sync unary and streaming methods and the callback-API WatchJob alike; a
// rejected call never takes a sync-pool thread or reaches the service, and the token is removed from
// the metadata handlers see. 1.51's (experimental) server interceptors can read the metadata but have
// no way to end a call with a status before its handler runs. The cost: only TLS credentials take a
// processor (InsecureServerCredentials asserts), so tokens need --tls_cert, which bearer tokens need
// anyway.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>

#include "server/api_tokens.h"
#include "server/server_metrics.h"

namespace psd3d {

class BearerTokenAuth final : public grpc::AuthMetadataProcessor {
 public:
  // `metrics` may be null.
  BearerTokenAuth(std::shared_ptr<const ApiTokens> tokens, ServerMetrics* metrics)
      : tokens_(std::move(tokens)), metrics_(metrics) {}

  // A digest and an in-memory comparison: cheap enough to run inline on gRPC's thread.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata, OutputMetadata* response_metadata) override;

  // Whether a method (":path", e.g. "/grpc.health.v1.Health/Check") is served without a token:
  // health (Kubernetes probes, load balancers) and reflection.
  static bool IsOpenMethod(absl::string_view path);

 private:
  grpc::Status Reject(const char* reason, const char* message);

  const std::shared_ptr<const ApiTokens> tokens_;
  ServerMetrics* const metrics_;
};

}  // namespace psd3d
