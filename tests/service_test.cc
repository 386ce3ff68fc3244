// End-to-end tests of the job service: real redis-server, real psd3d-server and psd3d-test-worker
// processes, a real gRPC client.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "psd3d/v1/generation.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

using testing::Process;
using testing::RedisServer;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("svc"); }
  void TearDown() override {
    if (HasFailure()) {
      if (server_) std::cerr << "--- server log\n" << server_->Log();
      for (auto& w : workers_) std::cerr << "--- worker log\n" << w->Log();
    }
  }

  void StartServer(const std::vector<std::string>& extra = {}) {
    int port = 0;
    server_ = testing::StartServer(redis_, dir_, &port, extra);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = v1::GenerationService::NewStub(channel_);
  }
  Process* StartWorker(const std::string& name, const std::vector<std::string>& extra = {}) {
    workers_.push_back(testing::StartTestWorker(redis_, dir_, name, extra));
    return workers_.back().get();
  }

  grpc::Status Submit(const std::string& prompt, v1::Job* job, const std::string& rid = "", uint64_t seed = 1) {
    v1::SubmitJobRequest req;
    req.mutable_spec()->set_prompt(prompt);
    req.mutable_spec()->set_seed(seed);
    req.mutable_spec()->set_preview_interval(5);
    req.set_request_id(rid);
    grpc::ClientContext ctx;
    return stub_->SubmitJob(&ctx, req, job);
  }
  std::string MustSubmit(const std::string& prompt, uint64_t seed = 1) {
    v1::Job job;
    auto s = Submit(prompt, &job, "", seed);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job.id();
  }
  v1::Job Get(const std::string& id) {
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    grpc::ClientContext ctx;
    auto s = stub_->GetJob(&ctx, req, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }
  v1::Job WaitFor(const std::string& id, std::function<bool(const v1::Job&)> pred, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    v1::Job job;
    while (absl::Now() < deadline) {
      job = Get(id);
      if (pred(job)) return job;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "timed out waiting on job " << id << ": " << job.ShortDebugString().substr(0, 600);
    return job;
  }
  v1::Job WaitForState(const std::string& id, v1::Job::State s, absl::Duration timeout = absl::Seconds(30)) {
    return WaitFor(id, [s](const v1::Job& j) { return j.state() == s; }, timeout);
  }
  // Watches from `after`; stops after `limit` events (0: until the stream ends).
  grpc::Status Watch(const std::string& id, const std::string& after, std::vector<v1::JobEvent>* out, int limit = 0) {
    v1::WatchJobRequest req;
    req.set_job_id(id);
    req.set_after_cursor(after);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = stub_->WatchJob(&ctx, req);
    v1::JobEvent ev;
    while (reader->Read(&ev)) {
      out->push_back(ev);
      if (limit > 0 && static_cast<int>(out->size()) >= limit) {
        ctx.TryCancel();
        break;
      }
    }
    return reader->Finish();
  }
  grpc::Status Download(const std::string& id, long long offset, std::string* data, std::string* sha) {
    v1::DownloadArtifactRequest req;
    req.set_job_id(id);
    req.set_name("mesh.glb");
    req.set_offset(offset);
    grpc::ClientContext ctx;
    auto reader = stub_->DownloadArtifact(&ctx, req);
    v1::ArtifactChunk c;
    while (reader->Read(&c)) {
      EXPECT_LE(c.data().size(), 1u << 20);
      EXPECT_EQ(c.offset(), offset + static_cast<long long>(data->size()));
      *data += c.data();
      *sha = c.sha256();
    }
    return reader->Finish();
  }
  grpc::health::v1::HealthCheckResponse::ServingStatus Health() {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("psd3d.v1.GenerationService");
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (!health->Check(&ctx, req, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    return resp.status();
  }
  long long QueueLength() {
    auto c = redis_.Connect();
    return (*c->Command({"ZCARD", "psd3d:queue"})).integer;
  }
  static bool HasLog(const std::vector<v1::JobEvent>& ev, const std::string& text) {
    for (const auto& e : ev) {
      if (e.has_log() && absl::StrContains(e.log().message(), text)) return true;
    }
    return false;
  }

  RedisServer redis_;
  std::string dir_;
  std::unique_ptr<Process> server_;
  std::vector<std::unique_ptr<Process>> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::GenerationService::Stub> stub_;
};

TEST_F(ServiceTest, SubmitWatchDownload) {
  StartServer();
  StartWorker("w1");
  std::string id = MustSubmit("a red cube steps=10");
  std::vector<v1::JobEvent> ev;
  ASSERT_TRUE(Watch(id, "", &ev).ok());
  std::vector<v1::Job::State> states;
  int progress = 0, previews = 0, artifacts = 0;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (i > 0) EXPECT_LT(ev[i - 1].cursor(), ev[i].cursor());  // same-length ids: lexical = numeric here
    if (ev[i].has_state()) states.push_back(ev[i].state().state());
    if (ev[i].has_progress()) ++progress;
    if (ev[i].has_preview()) {
      ++previews;
      EXPECT_EQ(ev[i].preview().png().substr(1, 3), "PNG");
    }
    if (ev[i].has_artifact()) ++artifacts;
  }
  EXPECT_EQ(states, (std::vector<v1::Job::State>{v1::Job::QUEUED, v1::Job::RUNNING, v1::Job::SUCCEEDED}));
  EXPECT_GE(progress, 10);
  EXPECT_EQ(previews, 6);  // 30 steps, every 5
  EXPECT_EQ(artifacts, 1);
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::Job::SUCCEEDED);
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_FLOAT_EQ(job.progress(), 1.0f);
  ASSERT_EQ(job.artifacts_size(), 1);
  std::string glb, sha;
  ASSERT_TRUE(Download(id, 0, &glb, &sha).ok());
  EXPECT_EQ(glb.substr(0, 4), "glTF");
  EXPECT_EQ(Sha256Hex(glb), sha);
  EXPECT_EQ(sha, job.artifacts(0).sha256());
  std::string tail, sha2;
  ASSERT_TRUE(Download(id, 20, &tail, &sha2).ok());  // resume from an offset
  EXPECT_EQ(tail, glb.substr(20));
  std::string none, sha3;
  EXPECT_EQ(Download(id, glb.size() + 1, &none, &sha3).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  // A watch of a finished job replays and ends; from its last cursor it ends at once.
  std::vector<v1::JobEvent> again, rest;
  ASSERT_TRUE(Watch(id, "", &again).ok());
  EXPECT_EQ(again.size(), ev.size());
  ASSERT_TRUE(Watch(id, ev.back().cursor(), &rest).ok());
  EXPECT_TRUE(rest.empty());
}

TEST_F(ServiceTest, HealthReflectionIdempotencyAndBadInput) {
  StartServer({"--max_queue=3"});
  {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("psd3d.v1.GenerationService");
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  v1::Job a, b;
  ASSERT_TRUE(Submit("same", &a, "rid-1").ok());
  ASSERT_TRUE(Submit("same", &b, "rid-1").ok());
  EXPECT_EQ(a.id(), b.id());
  v1::Job c;
  EXPECT_EQ(Submit("other", &c, "rid-1").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(QueueLength(), 1);

  struct Case {
    std::function<void(v1::SubmitJobRequest*)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](auto* r) { r->mutable_spec()->set_prompt(""); }, "spec.prompt"},
      {[](auto* r) { r->mutable_spec()->set_prompt(std::string(5000, 'x')); }, "spec.prompt"},
      {[](auto* r) { r->mutable_spec()->set_method(static_cast<v1::JobSpec::Method>(99)); }, "spec.method"},
      {[](auto* r) { r->mutable_spec()->set_quality(static_cast<v1::JobSpec::Quality>(99)); }, "spec.quality"},
      {[](auto* r) {
         auto* o = r->mutable_spec()->add_stage_overrides();
         o->set_stage(v1::STAGE_TEXTURE);
         o->set_steps(1000000);
       },
       "spec.stage_overrides[0].steps"},
      {[](auto* r) {
         auto* o = r->mutable_spec()->add_stage_overrides();
         o->set_stage(v1::STAGE_COARSE);
         o->set_render_resolution(4);
       },
       "spec.stage_overrides[0].render_resolution"},
      {[](auto* r) { r->set_priority(-1); }, "priority"},
  };
  for (const auto& c : cases) {
    v1::SubmitJobRequest req;
    req.mutable_spec()->set_prompt("a blue cube");
    c.mutate(&req);
    v1::Job job;
    grpc::ClientContext ctx;
    auto s = stub_->SubmitJob(&ctx, req, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_TRUE(absl::StartsWith(s.error_message(), c.field)) << s.error_message();
  }
  EXPECT_EQ(QueueLength(), 1);  // nothing enqueued by bad input
  {
    v1::GetJobRequest req;
    req.set_job_id("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    v1::Job job;
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->GetJob(&ctx, req, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::ListJobsRequest req;
    req.set_page_token("not-a-token");
    v1::ListJobsResponse resp;
    grpc::ClientContext ctx;
    auto s = stub_->ListJobs(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StartsWith(s.error_message(), "page_token"));
  }
  std::vector<v1::JobEvent> ev;
  EXPECT_EQ(Watch(a.id(), "garbage", &ev).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Admission control.
  MustSubmit("two");
  MustSubmit("three");
  v1::Job full;
  EXPECT_EQ(Submit("four", &full).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(QueueLength(), 3);
}

TEST_F(ServiceTest, CancelQueuedAndRunning) {
  StartServer();
  std::string queued = MustSubmit("waiting");
  {
    v1::CancelJobRequest req;
    req.set_job_id(queued);
    v1::Job job;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->CancelJob(&ctx, req, &job).ok());
    EXPECT_EQ(job.state(), v1::Job::CANCELLED);
  }
  StartWorker("w1");
  std::string running = MustSubmit("long steps=2000 step_ms=5");
  WaitFor(running, [](const v1::Job& j) { return j.state() == v1::Job::RUNNING && j.step() > 2; }, absl::Seconds(20));
  absl::Time t0 = absl::Now();
  v1::CancelJobRequest req;
  req.set_job_id(running);
  v1::Job job;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->CancelJob(&ctx, req, &job).ok());
  EXPECT_TRUE(job.state() == v1::Job::CANCELLING || job.state() == v1::Job::CANCELLED);
  WaitForState(running, v1::Job::CANCELLED, absl::Seconds(5));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
  std::vector<v1::JobEvent> ev;
  ASSERT_TRUE(Watch(running, "", &ev).ok());
  // The state changes end CANCELLING → CANCELLED; the worker may still report the step it was in
  // between the two (progress and log events), and the terminal event is last.
  std::vector<v1::Job::State> states;
  for (const auto& e : ev) {
    if (e.has_state()) states.push_back(e.state().state());
  }
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states[states.size() - 2], v1::Job::CANCELLING);
  EXPECT_EQ(ev.back().state().state(), v1::Job::CANCELLED);
  // The worker is free again.
  std::string next = MustSubmit("quick steps=2");
  WaitForState(next, v1::Job::SUCCEEDED);
}

TEST_F(ServiceTest, KilledWorkerJobResumesFromCheckpointOnAnotherWorker) {
  StartServer();
  Process* w1 = StartWorker("w1");
  const std::string prompt = "resumable steps=40 step_ms=15 ckpt_every=5";
  std::string id = MustSubmit(prompt, 42);
  WaitFor(id, [](const v1::Job& j) { return j.progress() > 0.4f; }, absl::Seconds(30));
  w1->Signal(SIGKILL);
  w1->Wait(absl::Seconds(5));
  StartWorker("w2");
  v1::Job job = WaitForState(id, v1::Job::SUCCEEDED, absl::Seconds(40));
  EXPECT_EQ(job.attempt(), 2);
  std::vector<v1::JobEvent> ev;
  ASSERT_TRUE(Watch(id, "", &ev).ok());
  EXPECT_TRUE(HasLog(ev, "resumed from checkpoint at step "));
  // The resumed trajectory equals an uninterrupted one: same mesh bytes.
  std::string straight = MustSubmit(prompt, 42);
  v1::Job ref = WaitForState(straight, v1::Job::SUCCEEDED, absl::Seconds(40));
  EXPECT_EQ(job.artifacts(0).sha256(), ref.artifacts(0).sha256());
}

TEST_F(ServiceTest, RedisRestartWithAofKeepsQueuedAndFinishedJobs) {
  StartServer();
  Process* w = StartWorker("w1", {"--max_jobs=1"});
  std::string done = MustSubmit("quick steps=3");
  WaitForState(done, v1::Job::SUCCEEDED);
  w->Wait(absl::Seconds(10));
  std::string queued1 = MustSubmit("later one"), queued2 = MustSubmit("later two");
  redis_.Kill();
  redis_.Start();
  // The server reconnects; everything is still there.
  v1::Job d = WaitFor(done, [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; }, absl::Seconds(10));
  EXPECT_EQ(d.artifacts_size(), 1);
  EXPECT_EQ(Get(queued1).state(), v1::Job::QUEUED);
  EXPECT_EQ(Get(queued2).queue_position(), 1);
  std::string glb, sha;
  ASSERT_TRUE(Download(done, 0, &glb, &sha).ok());
  EXPECT_EQ(Sha256Hex(glb), d.artifacts(0).sha256());
  StartWorker("w2");
  WaitForState(queued1, v1::Job::SUCCEEDED);
  WaitForState(queued2, v1::Job::SUCCEEDED);
}

TEST_F(ServiceTest, WatchReconnectMissesNothingAndTrimmedCursorIsOutOfRange) {
  StartServer({"--event_retention=40"});
  StartWorker("w1", {"--event_retention=40"});
  std::string id = MustSubmit("watched steps=10 step_ms=20");
  std::vector<v1::JobEvent> got;
  // Read a few events at a time, reconnecting with the last cursor each time.
  for (int round = 0; round < 200; ++round) {
    std::vector<v1::JobEvent> part;
    auto s = Watch(id, got.empty() ? "" : got.back().cursor(), &part, 3);
    got.insert(got.end(), part.begin(), part.end());
    if (!got.empty() && got.back().has_state() && got.back().state().state() == v1::Job::SUCCEEDED) break;
    ASSERT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::CANCELLED) << s.error_message();
  }
  ASSERT_TRUE(got.back().has_state());
  EXPECT_EQ(got.back().state().state(), v1::Job::SUCCEEDED);
  std::vector<v1::JobEvent> all;
  ASSERT_TRUE(Watch(id, got.front().cursor(), &all).ok());
  ASSERT_EQ(all.size() + 1, got.size());  // no duplicates, no gaps
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].cursor(), got[i + 1].cursor());
  // A long job overflows retention: its first cursor is now OUT_OF_RANGE, never a silent gap.
  std::string chatty = MustSubmit("chatty steps=30 step_ms=1");
  std::vector<v1::JobEvent> first;
  ASSERT_TRUE(Watch(chatty, "", &first, 1).ok() || true);
  WaitForState(chatty, v1::Job::SUCCEEDED);
  std::vector<v1::JobEvent> late;
  auto s = Watch(chatty, first.at(0).cursor(), &late);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
}

TEST_F(ServiceTest, PoisonJobFailsAfterMaxAttemptsWithReasonKept) {
  StartServer({"--max_attempts=2"});
  StartWorker("w1", {"--retry_backoff_ms=50"});
  std::string poison = MustSubmit("poison fail=always");
  v1::Job job = WaitForState(poison, v1::Job::FAILED);
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.error().code(), "INTERNAL");
  EXPECT_TRUE(absl::StrContains(job.error().message(), "injected failure")) << job.error().message();
  EXPECT_TRUE(absl::StrContains(job.error().message(), poison)) << job.error().message();
  std::string permanent = MustSubmit("broken fail=invalid");
  v1::Job p = WaitForState(permanent, v1::Job::FAILED);
  EXPECT_EQ(p.attempt(), 1);  // not retried
  EXPECT_EQ(p.error().code(), "INVALID_ARGUMENT");
  std::string flaky = MustSubmit("flaky fail=once steps=3");
  v1::Job f = WaitForState(flaky, v1::Job::SUCCEEDED);
  EXPECT_EQ(f.attempt(), 2);
}

TEST_F(ServiceTest, StaleWorkersLateCompletionIsRejected) {
  StartServer();
  Process* w1 = StartWorker("w1");
  std::string id = MustSubmit("stalls steps=15 step_ms=30 ckpt_every=3");
  WaitFor(id, [](const v1::Job& j) { return j.state() == v1::Job::RUNNING && j.progress() > 0.1f; }, absl::Seconds(20));
  w1->Signal(SIGSTOP);  // a hung worker: its lease (3 s) runs out
  v1::Job requeued = WaitFor(id, [](const v1::Job& j) { return j.state() == v1::Job::QUEUED; }, absl::Seconds(15));
  EXPECT_EQ(requeued.attempt(), 1);
  StartWorker("w2");
  WaitFor(id, [](const v1::Job& j) { return j.worker() == "w2"; }, absl::Seconds(15));
  w1->Signal(SIGCONT);  // wakes up believing it still owns the job
  v1::Job job = WaitForState(id, v1::Job::SUCCEEDED, absl::Seconds(40));
  EXPECT_EQ(job.attempt(), 2);
  // Its attempt ends as lease_lost, whether its lease keeper's renewal or a fenced write notices first.
  EXPECT_TRUE(w1->WaitForLog("outcome=lease_lost", absl::Seconds(10))) << w1->Log();
  std::vector<v1::JobEvent> ev;
  ASSERT_TRUE(Watch(id, "", &ev).ok());
  int succeeded = 0, artifacts = 0;
  for (const auto& e : ev) {
    succeeded += e.has_state() && e.state().state() == v1::Job::SUCCEEDED;
    artifacts += e.has_artifact();
  }
  EXPECT_EQ(succeeded, 1);
  EXPECT_EQ(artifacts, 1);
}

TEST_F(ServiceTest, SigtermCheckpointsReleasesAndExits) {
  StartServer();
  Process* w1 = StartWorker("w1", {"--lease_seconds=60", "--renew_seconds=5"});
  std::string id = MustSubmit("drained steps=40 step_ms=20");
  WaitFor(id, [](const v1::Job& j) { return j.progress() > 0.2f; }, absl::Seconds(20));
  w1->Signal(SIGTERM);
  EXPECT_EQ(w1->Wait(absl::Seconds(10)), 0);
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::Job::QUEUED);  // back at once, not after the 60 s lease
  EXPECT_EQ(job.attempt(), 0);
  StartWorker("w2");
  v1::Job done = WaitForState(id, v1::Job::SUCCEEDED, absl::Seconds(30));
  EXPECT_EQ(done.attempt(), 1);
  std::vector<v1::JobEvent> ev;
  ASSERT_TRUE(Watch(id, "", &ev).ok());
  EXPECT_TRUE(HasLog(ev, "resumed from checkpoint at step "));
}

// The fan-out's promise: Redis reads grow with event batches, not with watchers. Watchers subscribe to
// a queued job first (registration replays with one read each), then a worker runs it; the reads made
// while it runs are counted by the server's psd3d_watch_redis_reads_total.
TEST_F(ServiceTest, ManyWatchersOfOneJobCostTheRedisReadsOfOne) {
  const int metrics_port = testing::FreePort();
  StartServer({absl::StrCat("--metrics_address=127.0.0.1:", metrics_port), "--housekeeping_ms=50"});
  auto metric = [&](const char* name) {
    return testing::MetricValue(testing::HttpGet(metrics_port, "/metrics"), name);
  };
  auto run = [&](int watchers, const std::string& worker) -> std::pair<double, double> {
    std::string id = MustSubmit("watched steps=15 step_ms=15");
    std::vector<std::vector<v1::JobEvent>> events(watchers);
    std::vector<std::thread> threads;
    for (int i = 0; i < watchers; ++i) {
      threads.emplace_back([&, i] { EXPECT_TRUE(Watch(id, "", &events[i]).ok()); });
    }
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (metric("psd3d_stream_subscribers") != watchers && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    absl::SleepFor(absl::Milliseconds(200));  // let the counter catch up with the registrations
    const double before = metric("psd3d_watch_redis_reads_total");
    Process* w = StartWorker(worker);
    for (auto& t : threads) t.join();
    absl::SleepFor(absl::Milliseconds(200));
    const double reads = metric("psd3d_watch_redis_reads_total") - before;
    w->Signal(SIGTERM);
    EXPECT_EQ(w->Wait(absl::Seconds(10)), 0);
    if (events[0].empty()) {
      ADD_FAILURE() << "no events";
      return {0, 0};
    }
    for (int i = 1; i < watchers; ++i) {
      EXPECT_EQ(events[i].size(), events[0].size());
      EXPECT_EQ(events[i].back().cursor(), events[0].back().cursor());
    }
    EXPECT_EQ(events[0].back().state().state(), v1::Job::SUCCEEDED);
    return std::make_pair(reads, static_cast<double>(events[0].size()));
  };
  const auto [one_reads, events] = run(1, "w1");
  const auto [many_reads, many_events] = run(20, "w2");
  EXPECT_EQ(many_events, events);
  EXPECT_GT(one_reads, 0);
  // The same job costs about the same reads however many watch it (batching varies with timing);
  // one read per watcher per event would be 20× the events.
  EXPECT_LE(many_reads, 1.5 * one_reads + 5) << "1 watcher: " << one_reads << " reads; 20 watchers: " << many_reads
                                             << " reads; " << events << " events";
  EXPECT_LE(many_reads, events + 5);
}

// SIGTERM: health turns NOT_SERVING while RPCs still work, then open watch streams end UNAVAILABLE
// (never a silent EOF), the server exits 0, and the job carries on; a client resumes on a new server.
TEST_F(ServiceTest, GracefulShutdownGoesNotServingThenEndsStreamsUnavailable) {
  StartServer({"--shutdown_grace_seconds=1"});
  StartWorker("w1");
  std::string id = MustSubmit("long steps=40 step_ms=25");
  WaitForState(id, v1::Job::RUNNING);
  std::vector<v1::JobEvent> seen;
  grpc::Status watch_status;
  std::thread watcher([&] { watch_status = Watch(id, "", &seen); });
  absl::SleepFor(absl::Milliseconds(300));
  server_->Signal(SIGTERM);
  bool not_serving = false;
  for (absl::Time end = absl::Now() + absl::Milliseconds(900); absl::Now() < end && !not_serving;) {
    not_serving = Health() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
    if (!not_serving) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(not_serving) << "health did not turn NOT_SERVING during the grace period";
  EXPECT_EQ(Get(id).id(), id);  // still answering during the grace period
  watcher.join();
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::UNAVAILABLE) << watch_status.error_message();
  EXPECT_EQ(server_->Wait(absl::Seconds(15)), 0);
  ASSERT_FALSE(seen.empty());
  EXPECT_FALSE(seen.back().has_state() && seen.back().state().state() == v1::Job::SUCCEEDED)
      << "the job should still be running when the server stops";

  StartServer();
  std::vector<v1::JobEvent> rest;
  grpc::Status resumed = Watch(id, seen.back().cursor(), &rest);
  ASSERT_TRUE(resumed.ok()) << resumed.error_code() << ": " << resumed.error_message();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().state().state(), v1::Job::SUCCEEDED);
  EXPECT_NE(rest.front().cursor(), seen.back().cursor());
}

}  // namespace
}  // namespace psd3d
