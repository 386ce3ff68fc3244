// Exit codes (listed in --help) and the one place where failures become messages on stderr.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/strings/string_view.h"
#include "client/context.h"

namespace psd3d::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitJobFailed = 1,  // the watched job ended FAILED or CANCELLED
  kExitUsage = 2,      // bad command line, or INVALID_ARGUMENT
  kExitNotFound = 3,
  kExitUnreachable = 4,  // UNAVAILABLE, DEADLINE_EXCEEDED, no server
  kExitExhausted = 5,    // RESOURCE_EXHAUSTED, e.g. the queue is full
  kExitOther = 6,
  kExitUnauthenticated = 7,  // UNAUTHENTICATED: $PSD3D_API_TOKEN missing or not accepted
};

// Prints "psd3d: <message>" and returns `code`.
int Fail(int code, absl::string_view message);
// Prints the message and a pointer to --help; returns kExitUsage.
int UsageError(absl::string_view message);
// Prints "psd3d: <what>: <explanation>" for a failed call and returns the matching exit code.
int ReportRpcError(const Context& ctx, absl::string_view what, const grpc::Status& status);

}  // namespace psd3d::cli
