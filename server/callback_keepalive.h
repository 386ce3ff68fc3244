// A workaround for a gRPC 1.51 stall: the callback API's completion-queue threads (WatchJob uses that
// API) wait at most 1 s for work and then sleep 100 ms, and while they sleep the sync server's threads
// complete no RPC, so an idle-ish server stops answering unary calls for 100 ms every 1.1 s
// (docs/benchmarks.md has the measurements). A health Check to itself every 200 ms, which gRPC's
// built-in health service serves on the callback API, keeps those threads from ever idling.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"

namespace psd3d {

class CallbackKeepalive {
 public:
  // `listen` is the server's listen address (host:port, maybe 0.0.0.0 or [::]); `port` the bound port;
  // `tls_cert` its --tls_cert ("" when it serves plaintext).
  CallbackKeepalive(const std::string& listen, int port, const std::string& tls_cert);
  ~CallbackKeepalive();  // stops the thread

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace psd3d
