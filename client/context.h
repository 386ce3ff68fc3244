// What every subcommand gets: the stub, the channel and address (to explain connection errors) and the
// global flags.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "psd3d/v1/generation.grpc.pb.h"

namespace psd3d::cli {

struct Context {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::GenerationService::Stub> stub;
  std::string server;
  bool tls = false;    // the channel uses TLS
  bool token = false;  // and sends $PSD3D_API_TOKEN
  bool json = false;
  absl::Duration timeout;         // of unary calls; streams run as long as they need
  std::vector<std::string> args;  // positional arguments after the subcommand

  void SetUnaryDeadline(grpc::ClientContext* rpc) const {
    rpc->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
};

}  // namespace psd3d::cli
