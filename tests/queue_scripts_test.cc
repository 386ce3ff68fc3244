// The Lua transitions against a real redis-server: submit, claim, renew, emit, blobs, finish, retry,
// release, cancel, promote (lease recovery), fencing, idempotency, admission, listing. These pin the
// job state machine: QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED, CANCELLING while stopping.
#include <gtest/gtest.h>

#include <thread>

#include "absl/time/clock.h"
#include "common/event_log.h"
#include "common/ids.h"
#include "common/job_lease.h"
#include "common/job_queue.h"
#include "common/sha256.h"
#include "common/validation.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

using testing::RedisServer;

class QueueScriptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = std::make_unique<RedisPool>(redis_.options());
    config_.backoff_base_ms = 50;
    config_.backoff_max_ms = 200;
    config_.event_retention = 100;
    queue_ = std::make_unique<JobQueue>(pool_.get(), config_);
    lease_ = std::make_unique<JobLease>(pool_.get(), config_);
  }

  std::string Submit(const std::string& prompt, int priority = 0, const std::string& rid = "") {
    v1::SubmitJobRequest r;
    r.mutable_spec()->set_prompt(prompt);
    r.set_priority(priority);
    r.set_request_id(rid);
    ApplySubmitDefaults(&r, ValidationLimits{});
    auto s = queue_->Submit(r, Sha256Hex(prompt), limits_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->id : "";
  }

  Lease MustClaim(const std::string& worker = "w1", absl::Duration lease = absl::Seconds(30)) {
    auto c = lease_->Claim(worker, lease);
    EXPECT_TRUE(c.ok() && c->has_value()) << c.status();
    return c.ok() && c->has_value() ? **c : Lease{};
  }

  v1::Job::State StateOf(const std::string& id) {
    auto j = queue_->Get(id);
    return j.ok() ? j->state() : v1::Job::STATE_UNSPECIFIED;
  }

  std::vector<v1::JobEvent> Events(const std::string& id) {
    auto conn = redis_.Connect();
    auto e = EventLog(Keys(config_.prefix)).ReadAfter(*conn, id, "0-0", 1000);
    EXPECT_TRUE(e.ok());
    return e.ok() ? *e : std::vector<v1::JobEvent>{};
  }

  RedisServer redis_;
  QueueConfig config_;
  JobQueue::SubmitLimits limits_;
  std::unique_ptr<RedisPool> pool_;
  std::unique_ptr<JobQueue> queue_;
  std::unique_ptr<JobLease> lease_;
};

TEST_F(QueueScriptsTest, ClaimsByPriorityThenAge) {
  std::string a = Submit("a", 0), b = Submit("b", 5), c = Submit("c", 5);
  EXPECT_EQ(queue_->Get(b)->queue_position(), 0);
  EXPECT_EQ(queue_->Get(c)->queue_position(), 1);
  EXPECT_EQ(queue_->Get(a)->queue_position(), 2);
  EXPECT_EQ(MustClaim().job_id, b);
  EXPECT_EQ(MustClaim().job_id, c);
  Lease l = MustClaim();
  EXPECT_EQ(l.job_id, a);
  EXPECT_EQ(l.attempt, 1);
  EXPECT_EQ(StateOf(a), v1::Job::RUNNING);
  auto none = lease_->Claim("w1", absl::Seconds(30));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(QueueScriptsTest, HappyPathRecordsProgressArtifactAndEvents) {
  std::string id = Submit("a red cube");
  Lease l = MustClaim();
  ASSERT_TRUE(lease_->Renew(l, absl::Seconds(30)).ok());
  ASSERT_TRUE(lease_->Emit(l, {{"stage", "1"}, {"step", "3"}, {"total", "10"}}, {{"type", "log"}, {"level", "2"}, {"msg", "hi"}}).ok());
  std::string big(3 * JobLease::kChunk + 17, 'x');  // spans several chunks
  ASSERT_TRUE(lease_->PutBlob(l, "mesh.glb", big, "model/gltf-binary").ok());
  ASSERT_TRUE(lease_->Finish(l, v1::Job::SUCCEEDED, "completed").ok());
  auto job = queue_->Get(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::Job::SUCCEEDED);
  EXPECT_EQ(job->step(), 3);
  ASSERT_EQ(job->artifacts_size(), 1);
  EXPECT_EQ(job->artifacts(0).size_bytes(), static_cast<long long>(big.size()));
  EXPECT_EQ(job->artifacts(0).sha256(), Sha256Hex(big));
  auto tail = queue_->ReadArtifact(id, "mesh.glb", big.size() - 10, 100);
  EXPECT_EQ(*tail, big.substr(big.size() - 10));
  auto ev = Events(id);
  ASSERT_GE(ev.size(), 5u);
  EXPECT_EQ(ev[0].state().state(), v1::Job::QUEUED);
  EXPECT_EQ(ev[1].state().state(), v1::Job::RUNNING);
  EXPECT_EQ(ev[2].log().message(), "hi");
  EXPECT_EQ(ev[3].artifact().artifact().name(), "mesh.glb");
  EXPECT_EQ(ev.back().state().state(), v1::Job::SUCCEEDED);
  // A finished job's keys expire with the retention period.
  auto conn = redis_.Connect();
  EXPECT_GT((*conn->Command({"TTL", Keys(config_.prefix).Job(id)})).integer, 0);
}

TEST_F(QueueScriptsTest, StaleWorkerIsFencedOut) {
  std::string id = Submit("x");
  Lease stale = MustClaim("w1", absl::Milliseconds(100));
  absl::SleepFor(absl::Milliseconds(150));
  auto h = queue_->Promote();  // the lease expired: redelivered after backoff
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->redelivered, 1);
  EXPECT_EQ(StateOf(id), v1::Job::QUEUED);
  absl::SleepFor(absl::Milliseconds(80));
  Lease fresh = MustClaim("w2");
  EXPECT_EQ(fresh.attempt, 2);
  EXPECT_NE(fresh.token, stale.token);
  // Every write of the stale holder is rejected and changes nothing.
  EXPECT_EQ(lease_->Finish(stale, v1::Job::SUCCEEDED, "late").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(lease_->Renew(stale, absl::Seconds(1)).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(lease_->Emit(stale, {{"step", "99"}}, {}).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(lease_->PutBlob(stale, "mesh.glb", "junk", "x").code(), absl::StatusCode::kAborted);
  EXPECT_EQ(StateOf(id), v1::Job::RUNNING);
  EXPECT_EQ(queue_->Get(id)->worker(), "w2");
  EXPECT_EQ(queue_->Get(id)->artifacts_size(), 0);
  EXPECT_TRUE(lease_->Finish(fresh, v1::Job::SUCCEEDED, "done").ok());
}

TEST_F(QueueScriptsTest, RetriesWithBackoffThenDeadLetters) {
  limits_.max_attempts = 2;
  std::string id = Submit("poison");
  v1::JobError err;
  err.set_code("INTERNAL");
  err.set_message("boom");
  Lease l1 = MustClaim();
  EXPECT_EQ(*lease_->Retry(l1, err), v1::Job::QUEUED);
  // Not claimable until the backoff passes.
  EXPECT_FALSE(lease_->Claim("w", absl::Seconds(30))->has_value());
  absl::SleepFor(absl::Milliseconds(80));
  Lease l2 = MustClaim();
  EXPECT_EQ(l2.attempt, 2);
  EXPECT_EQ(*lease_->Retry(l2, err), v1::Job::FAILED);
  auto job = queue_->Get(id);
  EXPECT_EQ(job->state(), v1::Job::FAILED);
  EXPECT_EQ(job->error().code(), "INTERNAL");
  EXPECT_NE(job->error().message().find("no attempts left"), std::string::npos);
  auto conn = redis_.Connect();
  EXPECT_EQ((*conn->Command({"ZSCORE", Keys(config_.prefix).Dead(), id})).is_nil(), false);
}

TEST_F(QueueScriptsTest, CancelQueuedRunningAndFinishedIsIdempotent) {
  std::string q = Submit("queued");
  EXPECT_EQ(queue_->Cancel(q)->state(), v1::Job::CANCELLED);
  EXPECT_EQ(queue_->Cancel(q)->state(), v1::Job::CANCELLED);
  EXPECT_FALSE(lease_->Claim("w", absl::Seconds(30))->has_value());

  std::string r = Submit("running");
  Lease l = MustClaim();
  EXPECT_EQ(queue_->Cancel(r)->state(), v1::Job::CANCELLING);
  EXPECT_EQ(queue_->Cancel(r)->state(), v1::Job::CANCELLING);
  auto conn = redis_.Connect();
  EXPECT_TRUE(*lease_->WaitForCancel(*conn, r, absl::Milliseconds(100)));
  EXPECT_TRUE(lease_->Renew(l, absl::Seconds(30))->cancel_requested);
  ASSERT_TRUE(lease_->Finish(l, v1::Job::CANCELLED, "cancelled").ok());
  EXPECT_EQ(queue_->Cancel(r)->state(), v1::Job::CANCELLED);
  EXPECT_EQ(queue_->Cancel("01ARZ3NDEKTSV4RRFFQ69G5FAV").status().code(), absl::StatusCode::kNotFound);

  // A CANCELLING job whose worker died ends CANCELLED, not requeued.
  std::string d = Submit("dies");
  Lease dl = MustClaim("w", absl::Milliseconds(50));
  (void)dl;
  ASSERT_TRUE(queue_->Cancel(d).ok());
  absl::SleepFor(absl::Milliseconds(80));
  EXPECT_EQ(queue_->Promote()->cancelled, 1);
  EXPECT_EQ(StateOf(d), v1::Job::CANCELLED);
}

TEST_F(QueueScriptsTest, ReleaseKeepsCheckpointAndAttempt) {
  std::string id = Submit("long");
  Lease l = MustClaim();
  ASSERT_TRUE(lease_->PutBlob(l, std::string(Keys::kCheckpoint), "state@7", "application/octet-stream", 7).ok());
  EXPECT_EQ(*lease_->Release(l, "shutdown"), v1::Job::QUEUED);
  Lease again = MustClaim("w2");
  EXPECT_EQ(again.job_id, id);
  EXPECT_EQ(again.attempt, 1);  // a graceful hand-back spends no attempt
  EXPECT_TRUE(again.has_checkpoint);
  EXPECT_EQ(*lease_->GetCheckpoint(id), "state@7");
}

TEST_F(QueueScriptsTest, IdempotentSubmitAndAdmissionControl) {
  std::string a = Submit("same", 0, "req-1");
  std::string b = Submit("same", 0, "req-1");
  EXPECT_EQ(a, b);
  v1::SubmitJobRequest other;
  other.mutable_spec()->set_prompt("different");
  other.set_request_id("req-1");
  EXPECT_EQ(queue_->Submit(other, Sha256Hex("different"), limits_).status().code(), absl::StatusCode::kAlreadyExists);
  limits_.max_queue = 2;
  Submit("two");
  v1::SubmitJobRequest third;
  third.mutable_spec()->set_prompt("three");
  EXPECT_EQ(queue_->Submit(third, "fp3", limits_).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(queue_->QueueDepth()->queued_by_priority[0], 2);
}

TEST_F(QueueScriptsTest, ListFiltersAndPaginates) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(Submit("job " + std::to_string(i)));
    absl::SleepFor(absl::Milliseconds(2));  // distinct creation milliseconds keep ids ordered
  }
  ASSERT_TRUE(queue_->Cancel(ids[2]).ok());
  v1::ListJobsRequest req;
  req.set_page_size(3);
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    auto r = queue_->List(req);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& j : r->jobs()) seen.push_back(j.id());
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));
  v1::ListJobsRequest cancelled;
  cancelled.add_states(v1::Job::CANCELLED);
  auto r = queue_->List(cancelled);
  ASSERT_EQ(r->jobs_size(), 1);
  EXPECT_EQ(r->jobs(0).id(), ids[2]);
  req.add_states(v1::Job::QUEUED);  // the token was issued for other filters
  EXPECT_EQ(queue_->List(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_page_token("garbage");
  EXPECT_EQ(queue_->List(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(QueueScriptsTest, CursorsDetectRetentionGaps) {
  std::string id = Submit("chatty");
  Lease l = MustClaim();
  auto conn = redis_.Connect();
  EventLog log(Keys(config_.prefix));
  auto first = log.ReadAfter(*conn, id, "0-0", 1);
  std::string early = first->at(0).cursor();
  EXPECT_TRUE(log.CheckCursor(*conn, id, early).ok());
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(lease_->Emit(l, {}, {{"type", "log"}, {"level", "2"}, {"msg", "x"}}).ok());
  EXPECT_EQ(log.CheckCursor(*conn, id, early).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(log.CheckCursor(*conn, id, "").ok());
  EXPECT_EQ(log.CheckCursor(*conn, id, "junk").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.CheckCursor(*conn, id, "99999999999999-0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.CheckCursor(*conn, NewJobId(), "").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace psd3d
