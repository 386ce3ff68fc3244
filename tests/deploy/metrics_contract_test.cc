// The Grafana dashboard, the PrometheusRule and the KEDA query (deploy/base) read only metrics that a
// live psd3d-server and worker export: real redis-server, server and psd3d-test-worker processes run a
// job end to end (so every histogram has samples), then both /metrics endpoints are scraped and every
// name tools/deploy-check/check-monitoring.mjs extracts from those queries must be among the samples
// (histograms as their _bucket/_sum/_count series). The worker loads the fake NVML library, so the GPU
// memory panel's gauges are exported through the same code path as on a GPU node. The server runs as in
// production, with TLS and API tokens, so the authentication metrics have their series too.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "psd3d/v1/generation.grpc.pb.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

std::set<std::string> SampleNames(const std::string& exposition) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(std::string(line.substr(0, line.find_first_of("{ "))));
  }
  return names;
}

// "name<TAB>where" lines from check-monitoring.mjs --print-metrics.
std::vector<std::pair<std::string, std::string>> UsedMetrics() {
  const std::string cmd = absl::StrCat("node ", PSD3D_SOURCE_DIR, "/tools/deploy-check/check-monitoring.mjs ",
                                       PSD3D_SOURCE_DIR, "/deploy/base/monitoring --print-metrics");
  std::vector<std::pair<std::string, std::string>> used;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return used;
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd << "\n" << out;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('\t', 1));
    used.push_back(kv);
  }
  return used;
}

TEST(MetricsContract, DashboardAlertsAndScalingReadExportedMetrics) {
  const std::string dir = testing::MakeTempDir("metrics");
  testing::RedisServer redis;
  const int server_metrics = testing::FreePort();
  const int worker_metrics = testing::FreePort();
  const testing::TlsFiles tls = testing::MakeTlsFiles(dir);
  const std::string token = "metrics-0123456789abcdef01234567";
  testing::WriteFileAtomically(dir + "/tokens", "contract:" + token + "\n");
  int port = 0;
  auto server = testing::StartServer(redis, dir, &port,
                                     {absl::StrCat("--metrics_address=127.0.0.1:", server_metrics),
                                      "--housekeeping_ms=100", "--tls_cert=" + tls.server_cert,
                                      "--tls_key=" + tls.server_key, "--api_tokens_file=" + dir + "/tokens"});
  auto worker = testing::StartTestWorker(redis, dir, "w1",
                                         {absl::StrCat("--metrics_address=127.0.0.1:", worker_metrics),
                                          std::string("--nvml_library=") + PSD3D_FAKE_NVML});

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFileToString(tls.ca_cert).value();
  auto stub = v1::GenerationService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port),
      grpc::CompositeChannelCredentials(grpc::SslCredentials(ssl), grpc::AccessTokenCredentials(token))));
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_prompt("a metrics cube");
  req.mutable_spec()->set_seed(7);
  v1::Job job;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->SubmitJob(&ctx, req, &job).ok());
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (job.state() != v1::Job::SUCCEEDED && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    v1::GetJobRequest get;
    get.set_job_id(job.id());
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->GetJob(&ctx, get, &job).ok());
  }
  ASSERT_EQ(job.state(), v1::Job::SUCCEEDED) << worker->Log();

  // The server's queue-wide counters follow Redis on its housekeeping period.
  std::string server_text;
  for (int i = 0; i < 100; ++i) {
    server_text = testing::HttpGet(server_metrics, "/metrics");
    if (server_text.find("psd3d_job_outcomes_total{") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string worker_text = testing::HttpGet(worker_metrics, "/metrics");
  std::set<std::string> exported = SampleNames(server_text);
  for (const auto& n : SampleNames(worker_text)) exported.insert(n);
  ASSERT_GT(exported.size(), 15u) << server_text << worker_text;

  const auto used = UsedMetrics();
  ASSERT_GE(used.size(), 15u) << "check-monitoring.mjs found too few metric names";
  for (const auto& [name, where] : used) {
    EXPECT_TRUE(exported.count(name)) << where << " reads " << name << ", which neither /metrics exports";
  }

  // The fake NVML's first GPU: 1 GiB used of 80 GiB.
  EXPECT_NE(worker_text.find("psd3d_worker_gpu_memory_used_bytes{gpu=\"0\"} 1073741824"), std::string::npos)
      << worker_text;
  EXPECT_NE(worker_text.find("psd3d_worker_gpu_memory_total_bytes{gpu=\"1\"} 85899345920"), std::string::npos)
      << worker_text;
}

}  // namespace
}  // namespace psd3d
