#include "common/job_queue.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/job_codec.h"
#include "common/lua_scripts.h"
#include "common/sha256.h"
#include "google/protobuf/util/time_util.h"

namespace psd3d {
namespace {

using google::protobuf::util::TimeUtil;

std::string Str(long long v) { return absl::StrCat(v); }

// Jobs whose record expired leave their id in the index; List drops them as it meets them.
constexpr int kListScanBudget = 5000;

std::string FilterDigest(const v1::ListJobsRequest& req) {
  std::vector<int> states(req.states().begin(), req.states().end());
  std::sort(states.begin(), states.end());
  std::vector<std::pair<std::string, std::string>> labels(req.labels().begin(), req.labels().end());
  std::sort(labels.begin(), labels.end());
  std::string text = absl::StrCat("o=", req.order() == v1::ListJobsRequest::OLDEST_FIRST ? 1 : 0, ";s=");
  for (int s : states) absl::StrAppend(&text, s, ",");
  for (const auto& [k, v] : labels) absl::StrAppend(&text, ";", k.size(), ":", k, "=", v.size(), ":", v);
  return Sha256Hex(text).substr(0, 12);
}

bool Matches(const v1::Job& job, const v1::ListJobsRequest& req) {
  if (req.states_size() > 0 &&
      std::find(req.states().begin(), req.states().end(), job.state()) == req.states().end()) {
    return false;
  }
  for (const auto& [k, v] : req.labels()) {
    auto it = job.labels().find(k);
    if (it == job.labels().end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<JobQueue::Submitted> JobQueue::Submit(const v1::SubmitJobRequest& req,
                                                     const std::string& fingerprint,
                                                     const SubmitLimits& limits) {
  std::string id = NewJobId();
  std::string bytes;
  req.SerializeToString(&bytes);
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  std::string now = Str(NowMillis());
  auto r = (*conn)->Eval(lua::All().submit,
                         {config_.prefix, id, now, bytes, Str(req.priority()), Str(limits.max_attempts),
                          Str(limits.max_queue), req.request_id(), fingerprint, Str(config_.job_retention_s),
                          Str(config_.event_retention)});
  if (!r.ok()) return r.status();
  const std::string& verdict = r->elements.at(0).str;
  const std::string value = r->elements.at(1).AsString();
  if (verdict == "OK") return Submitted{value, false};
  if (verdict == "EXISTS") return Submitted{value, true};
  if (verdict == "CONFLICT") {
    return absl::AlreadyExistsError(absl::StrCat("request_id: '", req.request_id(), "' was already used for job ",
                                                 value, " with different content"));
  }
  return absl::ResourceExhaustedError(absl::StrCat("queue is full (", value, " jobs waiting, limit ",
                                                   limits.max_queue, "); retry later"));
}

absl::StatusOr<v1::Job> JobQueue::Get(const std::string& id) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  std::string now = Str(NowMillis());
  std::string jk = keys_.Job(id), ak = keys_.Artifacts(id), q = keys_.Queue(), d = keys_.Delayed(),
              w = keys_.Workers();
  auto rs = (*conn)->Pipeline({{"HGETALL", jk},
                               {"HGETALL", ak},
                               {"ZRANK", q, id},
                               {"ZSCORE", d, id},
                               {"ZCOUNT", w, now, "+inf"}});
  for (auto& r : rs) {
    if (!r.ok()) return r.status();
  }
  FieldMap f = ToFieldMap(*rs[0]);
  if (f.empty()) return absl::NotFoundError(absl::StrCat("job '", id, "' does not exist (or has expired)"));
  auto job = JobFromFields(f);
  if (!job.ok()) return job.status();
  FieldMap arts = ToFieldMap(*rs[1]);
  std::vector<std::string> names;
  for (const auto& [name, _] : arts) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::vector<std::string> parts = absl::StrSplit(arts[name], '\t');
    auto* a = job->add_artifacts();
    a->set_name(name);
    long long size = 0;
    (void)absl::SimpleAtoi(parts.size() > 0 ? parts[0] : "", &size);
    a->set_size_bytes(size);
    if (parts.size() > 1) a->set_sha256(parts[1]);
    if (parts.size() > 2) a->set_content_type(parts[2]);
  }
  // ETA from the mean of recent durations of jobs like this one.
  long long workers = std::max<long long>(1, rs[4]->integer);
  if (IsTerminal(job->state())) return job;
  auto durs = (*conn)->Command({"LRANGE", keys_.Durations(job->spec().method(), job->spec().quality()), "0", "19"});
  double mean = 0;
  if (durs.ok() && !durs->elements.empty()) {
    for (const auto& e : durs->elements) {
      double v = 0;
      (void)absl::SimpleAtod(e.str, &v);
      mean += v;
    }
    mean /= durs->elements.size();
  }
  double now_s = NowMillis() / 1000.0;
  if (job->state() == v1::Job::QUEUED) {
    double wait_until = 0;
    if (rs[2]->type == RedisReply::Type::kInteger) {
      job->set_queue_position(rs[2]->integer);
    } else if (!rs[3]->is_nil()) {
      double ready_ms = 0;
      (void)absl::SimpleAtod(rs[3]->str, &ready_ms);
      wait_until = std::max(0.0, ready_ms / 1000.0 - now_s);
    }
    if (mean > 0) {
      double ahead = static_cast<double>(std::max<long long>(0, job->queue_position())) / workers;
      *job->mutable_eta() = TimeUtil::MillisecondsToDuration(
          static_cast<long long>((wait_until + (static_cast<long long>(ahead) + 1) * mean) * 1000));
    }
  } else if (job->state() == v1::Job::RUNNING || job->state() == v1::Job::CANCELLING) {
    double eta_s = -1;
    if (f.contains("eta_s")) (void)absl::SimpleAtod(f["eta_s"], &eta_s);
    if (eta_s < 0 && mean > 0 && job->has_start_time()) {
      eta_s = std::max(0.0, mean - (now_s - TimeUtil::TimestampToMilliseconds(job->start_time()) / 1000.0));
    }
    if (eta_s >= 0) *job->mutable_eta() = TimeUtil::MillisecondsToDuration(static_cast<long long>(eta_s * 1000));
  }
  return job;
}

absl::StatusOr<v1::ListJobsResponse> JobQueue::List(const v1::ListJobsRequest& req) {
  const bool oldest_first = req.order() == v1::ListJobsRequest::OLDEST_FIRST;
  const int page_size = req.page_size() == 0 ? 50 : req.page_size();
  const std::string digest = FilterDigest(req);
  std::string after;
  if (!req.page_token().empty()) {
    std::string raw;
    std::vector<std::string> parts;
    if (absl::WebSafeBase64Unescape(req.page_token(), &raw)) parts = absl::StrSplit(raw, ':');
    if (parts.size() != 3 || parts[0] != "v1") {
      return absl::InvalidArgumentError("page_token: not a token this server issued");
    }
    if (parts[1] != digest) {
      return absl::InvalidArgumentError("page_token: was issued for other filters or another order");
    }
    after = parts[2];
  }
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  v1::ListJobsResponse resp;
  int scanned = 0;
  bool exhausted = false;
  std::string last;
  while (resp.jobs_size() < page_size && scanned < kListScanBudget) {
    int batch = std::min(std::max(page_size * 2, 64), kListScanBudget - scanned);
    const std::string index_key = keys_.Index();
    const std::string count = Str(batch);
    const std::string from = after.empty() ? (oldest_first ? "-" : "+") : "(" + after;
    std::vector<absl::string_view> cmd;
    if (oldest_first) {
      cmd = {"ZRANGE", index_key, from, "+", "BYLEX", "LIMIT", "0", count};
    } else {
      cmd = {"ZRANGE", index_key, from, "-", "BYLEX", "REV", "LIMIT", "0", count};
    }
    auto ids = (*conn)->Command(cmd);
    if (!ids.ok()) return ids.status();
    if (ids->elements.empty()) {
      exhausted = true;
      break;
    }
    std::vector<std::string> job_keys;
    for (const auto& e : ids->elements) job_keys.push_back(keys_.Job(e.str));
    std::vector<std::vector<absl::string_view>> cmds;
    for (const auto& k : job_keys) cmds.push_back({"HGETALL", k});
    auto rs = (*conn)->Pipeline(cmds);
    for (size_t i = 0; i < rs.size(); ++i) {
      const std::string& id = ids->elements[i].str;
      ++scanned;
      after = id;
      if (!rs[i].ok()) return rs[i].status();
      FieldMap f = ToFieldMap(*rs[i]);
      if (f.empty()) {
        (void)(*conn)->Command({"ZREM", index_key, id});
        continue;
      }
      auto job = JobFromFields(f);
      if (!job.ok() || !Matches(*job, req)) continue;
      *resp.add_jobs() = *std::move(job);
      last = id;
      if (resp.jobs_size() == page_size) break;
    }
    if (static_cast<int>(ids->elements.size()) < batch && resp.jobs_size() < page_size) {
      exhausted = true;
      break;
    }
  }
  if (!exhausted) {
    // More may follow: continue after the last id examined (not just the last returned).
    resp.set_next_page_token(absl::WebSafeBase64Escape(absl::StrCat("v1:", digest, ":", after)));
  }
  return resp;
}

absl::StatusOr<v1::Job> JobQueue::Cancel(const std::string& id) {
  {
    auto conn = pool_->Acquire();
    if (!conn.ok()) return conn.status();
    auto r = (*conn)->Eval(lua::All().cancel, {config_.prefix, id, Str(NowMillis()),
                                               Str(config_.event_retention), Str(config_.job_retention_s)});
    if (!r.ok()) return r.status();
    if (r->elements.at(0).str == "NOTFOUND") {
      return absl::NotFoundError(absl::StrCat("job '", id, "' does not exist (or has expired)"));
    }
  }
  return Get(id);
}

absl::StatusOr<JobQueue::Housekeeping> JobQueue::Promote(int limit) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->Eval(lua::All().promote,
                         {config_.prefix, Str(NowMillis()), Str(limit), Str(config_.backoff_base_ms),
                          Str(config_.backoff_max_ms), Str(config_.job_retention_s), Str(config_.event_retention)});
  if (!r.ok()) return r.status();
  Housekeeping h;
  h.promoted = r->elements.at(0).integer;
  h.redelivered = r->elements.at(1).integer;
  h.failed = r->elements.at(2).integer;
  h.cancelled = r->elements.at(3).integer;
  return h;
}

absl::StatusOr<JobQueue::Depth> JobQueue::QueueDepth() {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  std::vector<std::string> lo(10), hi(10);
  std::vector<std::vector<absl::string_view>> cmds;
  std::string q = keys_.Queue(), d = keys_.Delayed(), l = keys_.Leases(), w = keys_.Workers();
  constexpr long long kBand = 4398046511104LL;  // matches queue_score in prelude.lua
  for (int p = 0; p < 10; ++p) {
    lo[p] = Str((9 - p) * kBand);
    hi[p] = absl::StrCat("(", (10 - p) * kBand);
    cmds.push_back({"ZCOUNT", q, lo[p], hi[p]});
  }
  std::string now = Str(NowMillis());
  cmds.push_back({"ZCARD", d});
  cmds.push_back({"ZCARD", l});
  cmds.push_back({"ZCOUNT", w, now, "+inf"});
  auto rs = (*conn)->Pipeline(cmds);
  Depth out;
  for (auto& r : rs) {
    if (!r.ok()) return r.status();
  }
  for (int p = 0; p < 10; ++p) out.queued_by_priority[p] = rs[p]->integer;
  out.waiting_retry = rs[10]->integer;
  out.running = rs[11]->integer;
  out.live_workers = rs[12]->integer;
  return out;
}

absl::StatusOr<v1::Artifact> JobQueue::GetArtifact(const std::string& id, const std::string& name) {
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  auto rs = (*conn)->Pipeline({{"EXISTS", keys_.Job(id)}, {"HGET", keys_.Artifacts(id), name}});
  for (auto& r : rs) {
    if (!r.ok()) return r.status();
  }
  if (rs[0]->integer == 0) return absl::NotFoundError(absl::StrCat("job '", id, "' does not exist (or has expired)"));
  if (rs[1]->is_nil()) {
    return absl::NotFoundError(absl::StrCat("job ", id, " has no artifact '", name, "' (yet)"));
  }
  std::vector<std::string> parts = absl::StrSplit(rs[1]->str, '\t');
  v1::Artifact a;
  a.set_name(name);
  long long size = 0;
  (void)absl::SimpleAtoi(parts[0], &size);
  a.set_size_bytes(size);
  if (parts.size() > 1) a.set_sha256(parts[1]);
  if (parts.size() > 2) a.set_content_type(parts[2]);
  return a;
}

absl::StatusOr<std::string> JobQueue::ReadArtifact(const std::string& id, const std::string& name,
                                                   long long offset, long long length) {
  if (length <= 0) return std::string();
  auto conn = pool_->Acquire();
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->Command({"GETRANGE", keys_.Blob(id, name), Str(offset), Str(offset + length - 1)});
  if (!r.ok()) return r.status();
  return std::move(r->str);
}

}  // namespace psd3d
