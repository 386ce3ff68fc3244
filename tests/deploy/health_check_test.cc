// `psd3d-server --health_check`, the probe the server image's HEALTHCHECK runs, against a real server:
// readiness ("") follows Redis and shutdown; psd3d.liveness stays SERVING while the process runs (the
// Kubernetes liveness probe) and a Watch on it never sees NOT_SERVING; unreachable servers and unknown
// services fail.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

using testing::Process;

class HealthCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("health"); }

  // Runs the probe; returns its exit status.
  int Probe(int port, const std::string& service = "") {
    std::vector<std::string> argv = {testing::ServerBinary(), "--health_check",
                                     absl::StrCat("--listen=127.0.0.1:", port)};
    if (!service.empty()) argv.push_back("--health_service=" + service);
    Process p(absl::StrCat("probe-", ++probes_), argv, dir_);
    return p.Wait(absl::Seconds(10));
  }
  // Probes until the answer is `want` (housekeeping notices Redis within a period).
  bool ProbeUntil(int port, const std::string& service, int want) {
    for (int i = 0; i < 50; ++i) {
      if (Probe(port, service) == want) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  std::string dir_;
  int probes_ = 0;
};

TEST_F(HealthCheckTest, ReadinessFollowsRedisAndShutdownLivenessDoesNot) {
  testing::RedisServer redis;
  int port = 0;
  auto server = testing::StartServer(redis, dir_, &port, {"--shutdown_grace_seconds=3"});
  EXPECT_EQ(Probe(port), 0);
  EXPECT_EQ(Probe(port, "psd3d.liveness"), 0);
  EXPECT_EQ(Probe(port, "psd3d.v1.GenerationService"), 0);
  EXPECT_EQ(Probe(port, "no.such.Service"), 1);

  redis.Kill();
  EXPECT_TRUE(ProbeUntil(port, "", 1)) << "readiness stayed SERVING without Redis";
  EXPECT_EQ(Probe(port, "psd3d.liveness"), 0) << "a Redis outage must not fail liveness";
  redis.Start();
  EXPECT_TRUE(ProbeUntil(port, "", 0)) << "readiness did not come back with Redis";
  EXPECT_EQ(Probe(port, "psd3d.liveness"), 0);

  // SIGTERM: NOT_SERVING during the grace period, liveness still SERVING.
  server->Signal(SIGTERM);
  EXPECT_TRUE(ProbeUntil(port, "", 1));
  EXPECT_EQ(Probe(port, "psd3d.liveness"), 0);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0);
  EXPECT_EQ(Probe(port, "psd3d.liveness"), 1) << "nothing listens any more";
}

// Every status a grpc.health.v1 Watch on `service` receives, until Stop().
class HealthWatch {
 public:
  HealthWatch(int port, const std::string& service) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = grpc::health::v1::Health::NewStub(channel);
    thread_ = std::thread([this, service] {
      grpc::health::v1::HealthCheckRequest req;
      req.set_service(service);
      auto reader = stub_->Watch(&ctx_, req);
      grpc::health::v1::HealthCheckResponse resp;
      while (reader->Read(&resp)) {
        absl::MutexLock lock(&mu_);
        seen_.push_back(resp.status());
      }
      reader->Finish();
    });
  }
  ~HealthWatch() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    ctx_.TryCancel();
    thread_.join();
  }
  std::vector<int> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
  grpc::ClientContext ctx_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<int> seen_;
};

TEST_F(HealthCheckTest, LivenessWatchNeverSeesNotServing) {
  testing::RedisServer redis;
  int port = 0;
  auto server = testing::StartServer(redis, dir_, &port, {"--shutdown_grace_seconds=3"});
  HealthWatch watch(port, "psd3d.liveness");
  for (int round = 0; round < 3; ++round) {  // readiness flips both ways a few times
    redis.Kill();
    ASSERT_TRUE(ProbeUntil(port, "", 1));
    redis.Start();
    ASSERT_TRUE(ProbeUntil(port, "", 0));
  }
  server->Signal(SIGTERM);
  ASSERT_TRUE(ProbeUntil(port, "", 1));  // draining: readiness NOT_SERVING, liveness untouched
  watch.Stop();
  const std::vector<int> seen = watch.seen();
  ASSERT_FALSE(seen.empty());
  for (int status : seen) EXPECT_EQ(status, grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(server->Wait(absl::Seconds(30)), 0);
}

TEST_F(HealthCheckTest, NeedsAFixedPort) {
  Process p("probe-port0", {testing::ServerBinary(), "--health_check", "--listen=0.0.0.0:0"}, dir_);
  EXPECT_EQ(p.Wait(absl::Seconds(10)), 2);
  EXPECT_NE(p.Log().find("needs --listen with a fixed port"), std::string::npos) << p.Log();
}

}  // namespace
}  // namespace psd3d
