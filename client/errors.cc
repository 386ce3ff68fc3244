#include "client/errors.h"

#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace psd3d::cli {

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
                                                   " (is psd3d-server running?): ", msg));
      }
      return Fail(kExitUnreachable, absl::StrCat(what, ": the psd3d server at ", ctx.server, " is unavailable: ", msg));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Fail(kExitUnreachable, absl::StrCat(what, ": no answer from the psd3d server at ", ctx.server, " within ",
                                                 absl::FormatDuration(ctx.timeout), " (see --timeout_seconds)"));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Fail(kExitExhausted, absl::StrCat(what, ": ", msg));
    default:
      return Fail(kExitOther,
                  absl::StrCat(what, ": ", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                               ": ", msg));
  }
}

}  // namespace psd3d::cli
