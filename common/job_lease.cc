#include "common/job_lease.h"

#include "absl/strings/str_cat.h"
#include "common/lua_scripts.h"
#include "common/sha256.h"

namespace psd3d {
namespace {

std::string Str(long long v) { return absl::StrCat(v); }

}  // namespace

absl::StatusOr<RedisReply> JobLease::Fenced(const RedisScript& script, const Lease& lease,
                                            const std::vector<absl::string_view>& args) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  std::vector<absl::string_view> argv = {config_.prefix, lease.job_id, lease.token};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = (*conn)->Eval(script, argv);
  if (!r.ok()) return r.status();
  if (r->elements.size() >= 2 && r->elements[0].str == "LOST") {
    return absl::AbortedError(absl::StrCat("job ", lease.job_id, ": lease lost (token ", lease.token,
                                           ", job is now ", r->elements[1].str, ")"));
  }
  return r;
}

absl::StatusOr<std::optional<Lease>> JobLease::Claim(const std::string& worker, absl::Duration lease_time) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  std::string now = Str(NowMillis());
  auto p = (*conn)->Eval(lua::All().promote, {config_.prefix, now, "100", Str(config_.backoff_base_ms),
                                              Str(config_.backoff_max_ms), Str(config_.job_retention_s),
                                              Str(config_.event_retention)});
  if (!p.ok()) return p.status();
  auto r = (*conn)->Eval(lua::All().claim, {config_.prefix, now, worker,
                                            Str(absl::ToInt64Milliseconds(lease_time)),
                                            Str(config_.event_retention)});
  if (!r.ok()) return r.status();
  if (r->is_nil()) return std::optional<Lease>();
  Lease lease;
  lease.job_id = r->elements.at(0).AsString();
  lease.token = r->elements.at(1).AsString();
  lease.attempt = static_cast<int>(r->elements.at(2).integer);
  if (!lease.request.ParseFromString(r->elements.at(3).str)) {
    return absl::DataLossError(absl::StrCat("job ", lease.job_id, ": stored request does not parse"));
  }
  lease.has_checkpoint = r->elements.at(4).integer == 1;
  lease.enqueued_ms = r->elements.at(5).AsInteger().value_or(0);
  return std::optional<Lease>(std::move(lease));
}

absl::Status JobLease::WaitForWork(RedisConnection& conn, absl::Duration wait) {
  double secs = std::max(0.01, absl::ToDoubleSeconds(wait));
  auto r = conn.Command({"BLPOP", keys_.Notify(), absl::StrCat(secs)});
  return r.status();
}

absl::StatusOr<bool> JobLease::WaitForCancel(RedisConnection& conn, const std::string& job_id,
                                             absl::Duration wait) {
  double secs = std::max(0.01, absl::ToDoubleSeconds(wait));
  auto r = conn.Command({"BLPOP", keys_.Control(job_id), absl::StrCat(secs)});
  if (!r.ok()) return r.status();
  return !r->is_nil();
}

absl::Status JobLease::Heartbeat(const std::string& worker, absl::Duration ttl) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  long long now = NowMillis();
  auto rs = (*conn)->Pipeline({{"ZADD", keys_.Workers(), Str(now + absl::ToInt64Milliseconds(ttl)), worker},
                               {"ZREMRANGEBYSCORE", keys_.Workers(), "-inf", Str(now - 60000)}});
  for (auto& r : rs) {
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<LeaseState> JobLease::Renew(const Lease& lease, absl::Duration lease_time) {
  auto r = Fenced(lua::All().renew, lease, {Str(NowMillis()), Str(absl::ToInt64Milliseconds(lease_time))});
  if (!r.ok()) return r.status();
  return LeaseState{r->elements.at(1).str == "CANCELLING"};
}

absl::StatusOr<LeaseState> JobLease::Emit(const Lease& lease, const FieldList& job_fields, const FieldList& event) {
  std::string now = Str(NowMillis()), maxlen = Str(config_.event_retention), nh = Str(job_fields.size());
  std::vector<absl::string_view> args = {now, maxlen, nh};
  for (const auto& [k, v] : job_fields) {
    args.push_back(k);
    args.push_back(v);
  }
  for (const auto& [k, v] : event) {
    args.push_back(k);
    args.push_back(v);
  }
  auto r = Fenced(lua::All().emit, lease, args);
  if (!r.ok()) return r.status();
  return LeaseState{r->elements.at(1).str == "CANCELLING"};
}

absl::Status JobLease::PutBlob(const Lease& lease, const std::string& name, const std::string& data,
                               const std::string& content_type, int step) {
  long long offset = 0;
  do {
    long long n = std::min<long long>(kChunk, static_cast<long long>(data.size()) - offset);
    std::string off = Str(offset);
    auto r = Fenced(lua::All().blob_append, lease,
                    {name, off, absl::string_view(data).substr(offset, n)});
    if (!r.ok()) return r.status();
    if (r->elements.at(0).str != "OK") {
      return absl::InternalError(absl::StrCat("job ", lease.job_id, ": upload of ", name, " out of step at ", offset,
                                              " (staged ", r->elements.at(1).str, ")"));
    }
    offset += n;
  } while (offset < static_cast<long long>(data.size()));
  auto r = Fenced(lua::All().blob_commit, lease,
                  {Str(NowMillis()), Str(config_.event_retention), name, Str(data.size()), Sha256Hex(data),
                   content_type, Str(step)});
  if (!r.ok()) return r.status();
  if (r->elements.at(0).str != "OK") {
    return absl::InternalError(absl::StrCat("job ", lease.job_id, ": commit of ", name, " found ",
                                            r->elements.at(1).str, " staged bytes, expected ", data.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobLease::GetCheckpoint(const std::string& job_id) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->Command({"GET", keys_.Blob(job_id, Keys::kCheckpoint)});
  if (!r.ok()) return r.status();
  if (r->is_nil()) return absl::NotFoundError(absl::StrCat("job ", job_id, ": no checkpoint"));
  return std::move(r->str);
}

absl::Status JobLease::Finish(const Lease& lease, v1::Job::State state, const std::string& reason,
                              const v1::JobError* error) {
  std::string stage = error ? Str(error->stage()) : "", step = error ? Str(error->step()) : "";
  auto r = Fenced(lua::All().finish, lease,
                  {Str(NowMillis()), Str(config_.event_retention), Str(config_.job_retention_s),
                   v1::Job::State_Name(state), reason, error ? error->code() : "", error ? error->message() : "",
                   stage, step});
  return r.status();
}

absl::StatusOr<v1::Job::State> JobLease::Retry(const Lease& lease, const v1::JobError& error) {
  auto r = Fenced(lua::All().retry, lease,
                  {Str(NowMillis()), Str(config_.event_retention), Str(config_.job_retention_s),
                   Str(config_.backoff_base_ms), Str(config_.backoff_max_ms), error.code(), error.message(),
                   Str(error.stage()), Str(error.step())});
  if (!r.ok()) return r.status();
  return StateFromName(r->elements.at(1).str);
}

absl::StatusOr<v1::Job::State> JobLease::Release(const Lease& lease, const std::string& reason) {
  auto r = Fenced(lua::All().release, lease,
                  {Str(NowMillis()), Str(config_.event_retention), Str(config_.job_retention_s), reason});
  if (!r.ok()) return r.status();
  return StateFromName(r->elements.at(1).str);
}

absl::Status JobLease::RecordDuration(const v1::JobSpec& spec, double seconds) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  std::string key = keys_.Durations(spec.method(), spec.quality());
  auto rs = (*conn)->Pipeline({{"LPUSH", key, absl::StrCat(seconds)}, {"LTRIM", key, "0", "49"}});
  for (auto& r : rs) {
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

}  // namespace psd3d
