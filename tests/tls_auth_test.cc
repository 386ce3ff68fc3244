// TLS and API-token authentication end to end: a throwaway CA and server certificate made with the
// openssl CLI, a real psd3d-server serving TLS with a tokens file, redis-server and psd3d-test-worker,
// and gRPC clients with and without TLS and tokens.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "common/sha256.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "psd3d/v1/generation.grpc.pb.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

using testing::Process;

const std::string kAlice = "alice-0123456789abcdef0123456789";
const std::string kUnnamed = "unnamed-0123456789abcdef01234567";
const std::string kCarol = "carol-0123456789abcdef0123456789";
constexpr char kUnknownJob[] = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

// The value of the labelled sample `series` (e.g. psd3d_auth_failures_total{reason="missing"}), or -1.
double Sample(const std::string& exposition, const std::string& series) {
  const size_t at = exposition.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + series.size() + 1));
}

class TlsAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("tls");
    tls_ = testing::MakeTlsFiles(dir_);
    tokens_ = dir_ + "/tokens";
    testing::WriteFileAtomically(tokens_, "# tenants\nalice:" + kAlice + "\n\n" + kUnnamed + "\n");
    metrics_port_ = testing::FreePort();
    server_ = testing::StartServer(redis_, dir_, &port_,
                                   {"--tls_cert=" + tls_.server_cert, "--tls_key=" + tls_.server_key,
                                    "--api_tokens_file=" + tokens_,
                                    absl::StrCat("--metrics_address=127.0.0.1:", metrics_port_)});
    address_ = absl::StrCat("127.0.0.1:", port_);
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileToString(tls_.ca_cert).value();
    tls_channel_ = grpc::CreateChannel(address_, grpc::SslCredentials(ssl));
    stub_ = v1::GenerationService::NewStub(tls_channel_);
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "--- server log\n" << server_->Log();
  }

  // A call context with a 10 s deadline and, unless empty, this authorization metadata.
  std::unique_ptr<grpc::ClientContext> Call(const std::string& authorization) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) ctx->AddMetadata("authorization", authorization);
    return ctx;
  }

  struct Outcomes {
    grpc::Status submit, get, list, cancel, watch, download;
    std::vector<grpc::Status> all() const { return {submit, get, list, cancel, watch, download}; }
  };
  // Every GenerationService method once, unary and streaming.
  Outcomes CallEveryMethod(const std::string& authorization) {
    Outcomes o;
    v1::Job job;
    v1::SubmitJobRequest submit;
    submit.mutable_spec()->set_prompt("an unauthorized cube");
    o.submit = stub_->SubmitJob(Call(authorization).get(), submit, &job);
    v1::GetJobRequest get;
    get.set_job_id(kUnknownJob);
    o.get = stub_->GetJob(Call(authorization).get(), get, &job);
    v1::ListJobsResponse listed;
    o.list = stub_->ListJobs(Call(authorization).get(), v1::ListJobsRequest(), &listed);
    v1::CancelJobRequest cancel;
    cancel.set_job_id(kUnknownJob);
    o.cancel = stub_->CancelJob(Call(authorization).get(), cancel, &job);
    {
      auto ctx = Call(authorization);
      v1::WatchJobRequest req;
      req.set_job_id(kUnknownJob);
      auto reader = stub_->WatchJob(ctx.get(), req);
      v1::JobEvent event;
      while (reader->Read(&event)) {
      }
      o.watch = reader->Finish();
    }
    {
      auto ctx = Call(authorization);
      v1::DownloadArtifactRequest req;
      req.set_job_id(kUnknownJob);
      req.set_name("mesh.glb");
      auto reader = stub_->DownloadArtifact(ctx.get(), req);
      v1::ArtifactChunk chunk;
      while (reader->Read(&chunk)) {
      }
      o.download = reader->Finish();
    }
    return o;
  }

  std::string Metrics() { return testing::HttpGet(metrics_port_, "/metrics"); }

  int Probe(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {testing::ServerBinary(), "--health_check", "--listen=" + address_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process p(absl::StrCat("probe-", ++probes_), argv, dir_);
    return p.Wait(absl::Seconds(10));
  }

  testing::RedisServer redis_;
  std::string dir_, tokens_, address_;
  testing::TlsFiles tls_;
  int port_ = 0, metrics_port_ = 0, probes_ = 0;
  std::unique_ptr<Process> server_;
  std::shared_ptr<grpc::Channel> tls_channel_;
  std::unique_ptr<v1::GenerationService::Stub> stub_;
};

TEST_F(TlsAuthTest, PlaintextClientsAreRefused) {
  auto plain = v1::GenerationService::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  v1::GetJobRequest get;
  get.set_job_id(kUnknownJob);
  v1::Job job;
  auto ctx = Call("Bearer " + kAlice);
  const grpc::Status s = plain->GetJob(ctx.get(), get, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(Probe({}), 1) << "a plaintext health probe reached a TLS server";
}

TEST_F(TlsAuthTest, CallsWithoutAValidTokenAreUnauthenticated) {
  struct Case {
    std::string what, authorization, reason;
  };
  const std::vector<Case> cases = {
      {"no token", "", "missing"},
      {"unknown token", "Bearer wrong-0123456789abcdef0123456789", "invalid"},
      {"a known token's prefix", "Bearer " + kAlice.substr(0, kAlice.size() - 1), "invalid"},
      {"another scheme", "Basic " + kAlice, "malformed"},
  };
  for (const Case& c : cases) {
    const Outcomes o = CallEveryMethod(c.authorization);
    const char* methods[] = {"SubmitJob", "GetJob", "ListJobs", "CancelJob", "WatchJob", "DownloadArtifact"};
    const auto all = o.all();
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(all[i].error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << c.what << ": " << methods[i] << ": " << all[i].error_message();
      if (c.authorization.empty()) continue;
      EXPECT_FALSE(absl::StrContains(all[i].error_message(), c.authorization.substr(c.authorization.find(' ') + 1)))
          << c.what << ": the message repeats the credential: " << all[i].error_message();
    }
    if (c.reason == "missing") EXPECT_TRUE(absl::StrContains(o.submit.error_message(), "authorization: Bearer"));
  }
  EXPECT_EQ((*redis_.Connect()->Command({"ZCARD", "psd3d:queue"})).integer, 0) << "an unauthenticated submit ran";
  const std::string m = Metrics();
  EXPECT_EQ(Sample(m, "psd3d_auth_failures_total{reason=\"missing\"}"), 6) << m;
  EXPECT_EQ(Sample(m, "psd3d_auth_failures_total{reason=\"invalid\"}"), 12) << m;
  EXPECT_EQ(Sample(m, "psd3d_auth_failures_total{reason=\"malformed\"}"), 6) << m;
  // Rejected in the transport: no handler ran, so no RPC latency sample either.
  EXPECT_EQ(m.find("psd3d_rpc_seconds_count{"), std::string::npos) << m;
}

TEST_F(TlsAuthTest, AValidTokenSubmitsWatchesAndDownloads) {
  auto worker = testing::StartTestWorker(redis_, dir_, "w1");
  v1::SubmitJobRequest submit;
  submit.mutable_spec()->set_prompt("a tls cube steps=6 step_ms=5");
  submit.mutable_spec()->set_seed(3);
  v1::Job job;
  const grpc::Status submitted = stub_->SubmitJob(Call("Bearer " + kAlice).get(), submit, &job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();

  // Any listed token works, with the scheme in any case.
  v1::WatchJobRequest watch;
  watch.set_job_id(job.id());
  auto watch_ctx = Call("bearer " + kUnnamed);
  auto events = stub_->WatchJob(watch_ctx.get(), watch);
  v1::JobEvent event;
  v1::Job::State last = v1::Job::STATE_UNSPECIFIED;
  while (events->Read(&event)) {
    if (event.has_state()) last = event.state().state();
  }
  const grpc::Status watched = events->Finish();
  ASSERT_TRUE(watched.ok()) << watched.error_message() << "\n" << worker->Log();
  ASSERT_EQ(last, v1::Job::SUCCEEDED) << worker->Log();

  v1::DownloadArtifactRequest download;
  download.set_job_id(job.id());
  download.set_name("mesh.glb");
  auto dl_ctx = Call("Bearer " + kAlice);
  auto chunks = stub_->DownloadArtifact(dl_ctx.get(), download);
  v1::ArtifactChunk chunk;
  std::string mesh, sha256;
  while (chunks->Read(&chunk)) {
    mesh += chunk.data();
    sha256 = chunk.sha256();
  }
  const grpc::Status downloaded = chunks->Finish();
  ASSERT_TRUE(downloaded.ok()) << downloaded.error_message();
  EXPECT_EQ(mesh.substr(0, 4), "glTF");
  EXPECT_EQ(Sha256Hex(mesh), sha256);

  const std::string m = Metrics();
  EXPECT_EQ(Sample(m, "psd3d_authenticated_calls_total{token=\"alice\"}"), 2) << m;
  EXPECT_EQ(Sample(m, absl::StrCat("psd3d_authenticated_calls_total{token=\"sha256-", Sha256Hex(kUnnamed).substr(0, 8),
                                   "\"}")),
            1)
      << m;
  EXPECT_EQ(m.find(kAlice), std::string::npos) << "a token is in /metrics";
}

TEST_F(TlsAuthTest, HealthAndReflectionNeedNoToken) {
  auto health = grpc::health::v1::Health::NewStub(tls_channel_);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status checked = health->Check(Call("").get(), req, &resp);
  ASSERT_TRUE(checked.ok()) << checked.error_message();
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // Reflection's ListServices, as raw bytes (this test has no reflection stubs): field 7, empty.
  grpc::GenericStub generic(tls_channel_);
  grpc::CompletionQueue cq;
  auto ctx = Call("");
  auto call = generic.PrepareCall(ctx.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice list_services(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&list_services, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  std::string services;
  if (ok) {
    std::vector<grpc::Slice> slices;
    (void)response.Dump(&slices);
    for (const auto& s : slices) services.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status finished;
  call->Finish(&finished, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_TRUE(absl::StrContains(services, "psd3d.v1.GenerationService")) << services;

  // The container probe: TLS from --tls_cert (no verification on loopback, no token).
  EXPECT_EQ(Probe({"--tls_cert=" + tls_.server_cert}), 0);
  EXPECT_EQ(Probe({"--tls_cert=" + tls_.server_cert, "--health_service=psd3d.liveness"}), 0);
  EXPECT_EQ(Probe({"--tls_cert=" + tls_.server_cert, "--health_service=no.such.Service"}), 1);
}

// As in Kubernetes: the certificate names the Service, not loopback. The probe still connects (it
// does not verify), and it presents the certificate's name, so the server logs no name mismatch
// for each probe (nor for its own keepalive channel).
TEST_F(TlsAuthTest, ProbeWorksWithACertificateForAnotherName) {
  const std::string dir = testing::MakeTempDir("tls-svc");
  const testing::TlsFiles svc = testing::MakeTlsFiles(dir, "DNS:psd3d-server.psd3d.svc");
  int port = 0;
  auto server =
      testing::StartServer(redis_, dir, &port, {"--tls_cert=" + svc.server_cert, "--tls_key=" + svc.server_key});
  address_ = absl::StrCat("127.0.0.1:", port);
  EXPECT_EQ(Probe({"--tls_cert=" + svc.server_cert}), 0);
  EXPECT_EQ(Probe({"--tls_cert=" + svc.server_cert, "--health_service=psd3d.liveness"}), 0);
  absl::SleepFor(absl::Milliseconds(300));  // a keepalive round or two
  EXPECT_FALSE(absl::StrContains(server->Log(), "No match found for server name")) << server->Log();
}

TEST_F(TlsAuthTest, RotatedTokensTakeEffectWithoutRestart) {
  auto list = [&](const std::string& token) {
    v1::ListJobsResponse resp;
    return stub_->ListJobs(Call("Bearer " + token).get(), v1::ListJobsRequest(), &resp).error_code();
  };
  ASSERT_EQ(list(kAlice), grpc::StatusCode::OK);
  ASSERT_EQ(list(kCarol), grpc::StatusCode::UNAUTHENTICATED);

  // Rotation: carol in, alice out, as a Secret update swaps the mounted file.
  testing::WriteFileAtomically(tokens_, "carol:" + kCarol + "\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (list(kCarol) != grpc::StatusCode::OK && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(list(kCarol), grpc::StatusCode::OK);
  EXPECT_EQ(list(kAlice), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(server_->WaitForLog("api tokens reloaded", absl::Seconds(1))) << server_->Log();

  // A broken file (a token too short to be one) is refused; the tokens in force stay.
  testing::WriteFileAtomically(tokens_, "carol:" + kCarol + "\ndave:tiny-secret\n");
  EXPECT_TRUE(server_->WaitForLog("api tokens not reloaded", absl::Seconds(10))) << server_->Log();
  EXPECT_EQ(list(kCarol), grpc::StatusCode::OK);
  EXPECT_EQ(list("tiny-secret"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(server_->Log(), "line 2")) << server_->Log();
  EXPECT_FALSE(absl::StrContains(server_->Log(), "tiny-secret")) << "the log holds a token";
  EXPECT_FALSE(absl::StrContains(server_->Log(), kCarol)) << "the log holds a token";
}

// Settings that would serve tokens in plaintext, or could only fail at handshake time, stop the
// server at startup with exit 2 and a message naming the flag.
TEST_F(TlsAuthTest, UnsafeOrBrokenSettingsStopTheServer) {
  const std::string redis = "--redis=" + redis_.address();
  const std::string bad_tokens = dir_ + "/bad-tokens";
  testing::WriteFileAtomically(bad_tokens, "# ok so far\nshort:tiny-secret\n");
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--api_tokens_file=" + tokens_}, "--api_tokens_file needs --tls_cert"},
      {{"--tls_cert=" + tls_.server_cert}, "--tls_cert and --tls_key go together"},
      {{"--tls_cert=" + tls_.server_cert, "--tls_key=" + dir_ + "/ca.key"}, "is not the key of --tls_cert"},
      {{"--tls_cert=" + dir_ + "/missing.crt", "--tls_key=" + tls_.server_key}, "--tls_cert: cannot read"},
      {{"--tls_cert=" + tls_.server_cert, "--tls_key=" + tls_.server_key, "--api_tokens_file=" + bad_tokens},
       "line 2: a token must be at least 16"},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::vector<std::string> argv = {testing::ServerBinary(), "--listen=127.0.0.1:0", "--metrics_address=", redis};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    Process p(absl::StrCat("refused-", ++n), argv, dir_);
    EXPECT_EQ(p.Wait(absl::Seconds(10)), 2) << p.Log();
    EXPECT_TRUE(absl::StrContains(p.Log(), c.message)) << p.Log();
    EXPECT_FALSE(absl::StrContains(p.Log(), "tiny-secret")) << p.Log();
  }
}

}  // namespace
}  // namespace psd3d
