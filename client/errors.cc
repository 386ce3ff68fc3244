#include "client/errors.h"

#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/connection.h"

namespace psd3d::cli {
namespace {

// What to check when a connection never got through: the usual TLS mistakes.
std::string ConnectHint(const Context& ctx, const std::string& msg) {
  if (!ctx.tls) {
    // What a TLS server does to a plaintext connection.
    return absl::StrContains(msg, "Socket closed") ? " (if the server serves TLS, add --tls or --tls_ca=FILE)" : "";
  }
  if (absl::StrContains(msg, "CERTIFICATE_VERIFY_FAILED") || absl::StrContains(msg, "certificate verify failed")) {
    return " (the server's certificate is not signed by a trusted CA: pass its CA with --tls_ca=FILE)";
  }
  if (absl::StrContains(msg, "not in peer certificate")) {
    return " (the server's certificate does not name the host you connect to: see --tls_server_name)";
  }
  if (absl::StrContains(msg, "handshake") || absl::StrContains(msg, "Handshake")) {
    return " (TLS handshake failed: does the server serve TLS on this port?)";
  }
  return "";
}

}  // namespace

int Fail(int code, absl::string_view message) {
  std::cerr << "psd3d: " << message << "\n";
  return code;
}

int UsageError(absl::string_view message) {
  std::cerr << "psd3d: " << message << "\n(psd3d --help shows the usage)\n";
  return kExitUsage;
}

int ReportRpcError(const Context& ctx, absl::string_view what, const grpc::Status& status) {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Fail(kExitUsage, absl::StrCat(what, ": ", msg));
    case grpc::StatusCode::NOT_FOUND:
      return Fail(kExitNotFound, absl::StrCat(what, ": ", msg));
    case grpc::StatusCode::UNAVAILABLE:
      // A channel that is not READY never got through; otherwise the server itself answered UNAVAILABLE.
      if (ctx.channel->GetState(false) != GRPC_CHANNEL_READY) {
        return Fail(kExitUnreachable, absl::StrCat(what, ": cannot reach the psd3d server at ", ctx.server,
                                                   " (is psd3d-server running?): ", msg, ConnectHint(ctx, msg)));
      }
      return Fail(kExitUnreachable, absl::StrCat(what, ": the psd3d server at ", ctx.server, " is unavailable: ", msg));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Fail(kExitUnreachable, absl::StrCat(what, ": no answer from the psd3d server at ", ctx.server, " within ",
                                                 absl::FormatDuration(ctx.timeout), " (see --timeout_seconds)"));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Fail(kExitExhausted, absl::StrCat(what, ": ", msg));
    case grpc::StatusCode::UNAUTHENTICATED:
      return Fail(kExitUnauthenticated,
                  absl::StrCat(what, ": the psd3d server at ", ctx.server, " refused the call: ", msg, "; ",
                               ctx.token ? absl::StrCat("check $", kApiTokenEnv, " (it may be revoked or mistyped)")
                                         : absl::StrCat("set $", kApiTokenEnv, " to an API token",
                                                        ctx.tls ? "" : " and connect with --tls or --tls_ca"),
                               " (UNAUTHENTICATED)"));
    default:
      return Fail(kExitOther,
                  absl::StrCat(what, ": ", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                               ": ", msg));
  }
}

}  // namespace psd3d::cli
