#include "server/generation_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace psd3d {
namespace {

constexpr long long kChunk = 1 << 20;

// Content identity of a submit for the request_id check, taken before defaults (such as a random
// seed) are filled in. Deterministic serialization keeps label order from mattering.
std::string Fingerprint(const v1::SubmitJobRequest& req) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream sink(&bytes);
    google::protobuf::io::CodedOutputStream out(&sink);
    out.SetSerializationDeterministic(true);
    req.SerializeToCodedStream(&out);
  }
  return Sha256Hex(bytes);
}

class RpcTimer {
 public:
  RpcTimer(ServerMetrics* m, const char* method) : m_(m), method_(method), start_(absl::Now()) {}
  grpc::Status Done(grpc::Status s) {
    if (m_) m_->Rpc(method_, absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
                    absl::ToDoubleSeconds(absl::Now() - start_));
    return s;
  }

 private:
  ServerMetrics* m_;
  const char* method_;
  absl::Time start_;
};

// One WatchJob stream. The hub pushes events; writes go out one at a time in order.
class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent>, public WatchSink {
 public:
  WatchReactor(WatchHub* hub, int max_backlog, const v1::WatchJobRequest& req) : hub_(hub), max_backlog_(max_backlog) {
    if (auto s = ValidateJobId(req.job_id()); !s.ok()) {
      finished_ = true;
      Finish(ToGrpc(s));
      return;
    }
    hub_->Add(req.job_id(), req.after_cursor(), this);
  }

  void OnEvents(const std::vector<EventPtr>& events, bool terminal) override {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    for (const auto& e : events) queue_.push_back(e);
    terminal_ |= terminal;
    if (static_cast<int>(queue_.size()) > max_backlog_) {
      std::string resume = last_written_.empty() ? "an empty cursor" : "cursor " + last_written_;
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                absl::StrCat("client reads too slowly; resume with ", resume)));
      return;
    }
    MaybeWriteLocked();
  }

  void OnError(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (!finished_) FinishLocked(ToGrpc(status));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      // The client went away; OnCancel/OnDone follow. The job is unaffected.
      return;
    }
    last_written_ = queue_.front()->cursor();
    queue_.pop_front();
    MaybeWriteLocked();
  }

  void OnCancel() override { hub_->Remove(this); }

  void OnDone() override {
    hub_->Remove(this);
    delete this;
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      StartWrite(queue_.front().get());
    } else if (terminal_) {
      FinishLocked(grpc::Status::OK);
    }
  }
  void FinishLocked(const grpc::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    Finish(s);
  }

  WatchHub* hub_;
  const int max_backlog_;
  absl::Mutex mu_;
  std::deque<EventPtr> queue_ ABSL_GUARDED_BY(mu_);
  std::string last_written_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool terminal_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status GenerationServiceImpl::SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* req,
                                              v1::Job* resp) {
  RpcTimer t(metrics_, "SubmitJob");
  const auto method = req->has_spec() && v1::JobSpec::Method_IsValid(req->spec().method()) &&
                              req->spec().method() != v1::JobSpec::METHOD_UNSPECIFIED
                          ? req->spec().method()
                          : v1::JobSpec::PSD;
  if (auto s = ValidateSubmit(*req, options_.limits); !s.ok()) {
    if (metrics_) metrics_->Submitted(method, "invalid");
    return t.Done(ToGrpc(s));
  }
  v1::SubmitJobRequest filled = *req;
  const std::string fingerprint = req->request_id().empty() ? "" : Fingerprint(*req);
  ApplySubmitDefaults(&filled, options_.limits);
  auto submitted = queue_->Submit(filled, fingerprint, options_.submit);
  if (!submitted.ok()) {
    if (metrics_) {
      metrics_->Submitted(method, submitted.status().code() == absl::StatusCode::kResourceExhausted ? "rejected_full"
                                                                                                    : "error");
    }
    return t.Done(ToGrpc(submitted.status()));
  }
  if (metrics_) metrics_->Submitted(method, submitted->existed ? "duplicate" : "accepted");
  if (!submitted->existed) {
    // Answer from what was just written instead of a second round trip.
    resp->set_id(submitted->id);
    *resp->mutable_spec() = filled.spec();
    resp->set_state(v1::Job::QUEUED);
    resp->set_max_attempts(options_.submit.max_attempts);
    resp->set_priority(filled.priority());
    *resp->mutable_labels() = filled.labels();
    resp->set_request_id(filled.request_id());
    resp->set_queue_position(-1);
    return t.Done(grpc::Status::OK);
  }
  auto job = queue_->Get(submitted->id);
  if (!job.ok()) return t.Done(ToGrpc(job.status()));
  *resp = *std::move(job);
  return t.Done(grpc::Status::OK);
}

grpc::Status GenerationServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* req, v1::Job* resp) {
  RpcTimer t(metrics_, "GetJob");
  if (auto s = ValidateJobId(req->job_id()); !s.ok()) return t.Done(ToGrpc(s));
  auto job = queue_->Get(req->job_id());
  if (!job.ok()) return t.Done(ToGrpc(job.status()));
  *resp = *std::move(job);
  return t.Done(grpc::Status::OK);
}

grpc::Status GenerationServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* req,
                                             v1::ListJobsResponse* resp) {
  RpcTimer t(metrics_, "ListJobs");
  if (auto s = ValidateListRequest(*req); !s.ok()) return t.Done(ToGrpc(s));
  auto r = queue_->List(*req);
  if (!r.ok()) return t.Done(ToGrpc(r.status()));
  *resp = *std::move(r);
  return t.Done(grpc::Status::OK);
}

grpc::Status GenerationServiceImpl::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* req, v1::Job* resp) {
  RpcTimer t(metrics_, "CancelJob");
  if (auto s = ValidateJobId(req->job_id()); !s.ok()) return t.Done(ToGrpc(s));
  auto job = queue_->Cancel(req->job_id());
  if (!job.ok()) return t.Done(ToGrpc(job.status()));
  *resp = *std::move(job);
  return t.Done(grpc::Status::OK);
}

grpc::Status GenerationServiceImpl::DownloadArtifact(grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
                                                     grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  if (auto s = ValidateJobId(req->job_id()); !s.ok()) return ToGrpc(s);
  if (auto s = ValidateArtifactName(req->name()); !s.ok()) return ToGrpc(s);
  auto meta = queue_->GetArtifact(req->job_id(), req->name());
  if (!meta.ok()) return ToGrpc(meta.status());
  const long long size = meta->size_bytes();
  if (req->offset() < 0 || req->offset() > size) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        absl::StrCat("offset: ", req->offset(), " is outside [0, ", size, "] for ", req->name()));
  }
  long long offset = req->offset();
  do {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    auto data = queue_->ReadArtifact(req->job_id(), req->name(), offset, std::min(kChunk, size - offset));
    if (!data.ok()) return ToGrpc(data.status());
    if (static_cast<long long>(data->size()) != std::min(kChunk, size - offset)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("artifact ", req->name(), " of job ", req->job_id(), " has expired"));
    }
    v1::ArtifactChunk chunk;
    chunk.set_offset(offset);
    chunk.set_total_size(size);
    chunk.set_sha256(meta->sha256());
    offset += static_cast<long long>(data->size());
    *chunk.mutable_data() = *std::move(data);
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  } while (offset < size);
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::JobEvent>* GenerationServiceImpl::WatchJob(grpc::CallbackServerContext*,
                                                                        const v1::WatchJobRequest* req) {
  return new WatchReactor(hub_, options_.max_watch_backlog, *req);
}

}  // namespace psd3d
