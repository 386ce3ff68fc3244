#include "server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace psd3d {
namespace {

constexpr absl::string_view kOpenServices[] = {
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
};

absl::string_view View(grpc::string_ref s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

bool BearerTokenAuth::IsOpenMethod(absl::string_view path) {
  for (absl::string_view prefix : kOpenServices) {
    if (absl::StartsWith(path, prefix)) return true;
  }
  return false;
}

grpc::Status BearerTokenAuth::Reject(const char* reason, const char* message) {
  if (metrics_) metrics_->AuthFailure(reason);
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, message);
}

grpc::Status BearerTokenAuth::Process(const InputMetadata& auth_metadata, grpc::AuthContext*,
                                      OutputMetadata* consumed_auth_metadata, OutputMetadata*) {
  // No path means no way to tell an open method: fail closed.
  auto path = auth_metadata.find(":path");
  if (path != auth_metadata.end() && IsOpenMethod(View(path->second))) return grpc::Status::OK;

  // Messages never repeat what the client sent: it may be a real token sent to the wrong server.
  const auto [first, last] = auth_metadata.equal_range("authorization");
  if (first == last) {
    return Reject("missing", "missing API token: send the metadata 'authorization: Bearer <token>'");
  }
  if (std::next(first) != last) return Reject("malformed", "more than one authorization metadata entry");
  absl::string_view value = View(first->second);
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return Reject("malformed", "the authorization metadata must be 'Bearer <token>'");
  }
  const std::optional<std::string> name =
      tokens_->Find(absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size())));
  if (!name) return Reject("invalid", "API token not accepted (unknown or revoked)");
  if (metrics_) metrics_->Authenticated(*name);
  // Handlers (and anything that logs their metadata) never see the token.
  consumed_auth_metadata->emplace(std::string(first->first.data(), first->first.size()), std::string(value));
  return grpc::Status::OK;
}

}  // namespace psd3d
