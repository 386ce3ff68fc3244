#include "server/callback_keepalive.h"

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/health_probe.h"

namespace psd3d {

CallbackKeepalive::CallbackKeepalive(const std::string& listen, int port, const std::string& tls_cert) {
  thread_ = std::thread([this, target = LoopbackTarget(listen, port), tls_cert] {
    auto stub = grpc::health::v1::Health::NewStub(LoopbackChannel(target, tls_cert));
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
