#include "server/callback_keepalive.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace psd3d {
namespace {

// Where to reach our own listener: the listen host, or loopback when it listens on every address.
std::string SelfTarget(const std::string& listen, int port) {
  absl::string_view host = listen;
  if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) host = host.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
  return absl::StrCat(host, ":", port);
}

}  // namespace

CallbackKeepalive::CallbackKeepalive(const std::string& listen, int port) {
  thread_ = std::thread([this, target = SelfTarget(listen, port)] {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      grpc::health::v1::HealthCheckRequest req;
      grpc::health::v1::HealthCheckResponse resp;
      stub->Check(&ctx, req, &resp);  // the answer does not matter, only that the call happens
    }
  });
}

CallbackKeepalive::~CallbackKeepalive() {
  stop_.Notify();
  thread_.join();
}

}  // namespace psd3d
