#include "common/job_codec.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"

namespace psd3d {
namespace {

using google::protobuf::util::TimeUtil;

long long Int(const FieldMap& f, const char* key) {
  auto it = f.find(key);
  long long v = 0;
  if (it != f.end()) (void)absl::SimpleAtoi(it->second, &v);
  return v;
}

double Real(const FieldMap& f, const char* key) {
  auto it = f.find(key);
  double v = 0;
  if (it != f.end()) (void)absl::SimpleAtod(it->second, &v);
  return v;
}

const std::string& Str(const FieldMap& f, const char* key) {
  static const std::string kEmpty;
  auto it = f.find(key);
  return it == f.end() ? kEmpty : it->second;
}

void SetTime(long long ms, google::protobuf::Timestamp* t) {
  *t = TimeUtil::MillisecondsToTimestamp(ms);
}

v1::Stage StageOf(long long v) {
  return v1::Stage_IsValid(static_cast<int>(v)) ? static_cast<v1::Stage>(v) : v1::STAGE_UNSPECIFIED;
}

void FillError(const FieldMap& f, v1::JobError* e) {
  e->set_code(Str(f, "err_code"));
  e->set_message(Str(f, "err_msg"));
  e->set_stage(StageOf(Int(f, "err_stage")));
  e->set_step(static_cast<int>(Int(f, "err_step")));
}

void FillMetrics(const FieldMap& f, v1::JobMetrics* m) {
  m->set_loss(Real(f, "loss"));
  m->set_reward(Real(f, "reward"));
  m->set_step_seconds(Real(f, "step_s"));
}

std::string Num(double v) { return absl::StrCat(v); }

}  // namespace

FieldMap ToFieldMap(const RedisReply& r) {
  FieldMap out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    out[r.elements[i].AsString()] = r.elements[i + 1].AsString();
  }
  return out;
}

std::string StateName(v1::Job::State s) { return v1::Job::State_Name(s); }

v1::Job::State StateFromName(const std::string& name) {
  v1::Job::State s;
  return v1::Job::State_Parse(name, &s) ? s : v1::Job::STATE_UNSPECIFIED;
}

bool IsTerminal(v1::Job::State s) {
  return s == v1::Job::SUCCEEDED || s == v1::Job::FAILED || s == v1::Job::CANCELLED;
}

absl::StatusOr<v1::Job> JobFromFields(const FieldMap& f) {
  v1::Job job;
  v1::SubmitJobRequest req;
  if (!req.ParseFromString(Str(f, "submit"))) {
    return absl::DataLossError(absl::StrCat("job ", Str(f, "id"), ": stored request does not parse"));
  }
  job.set_id(Str(f, "id"));
  *job.mutable_spec() = std::move(*req.mutable_spec());
  job.set_priority(req.priority());
  *job.mutable_labels() = req.labels();
  job.set_request_id(req.request_id());
  job.set_state(StateFromName(Str(f, "state")));
  job.set_attempt(static_cast<int>(Int(f, "attempt")));
  job.set_max_attempts(static_cast<int>(Int(f, "max_attempts")));
  job.set_stage(StageOf(Int(f, "stage")));
  job.set_step(static_cast<int>(Int(f, "step")));
  job.set_total_steps(static_cast<int>(Int(f, "total")));
  job.set_progress(static_cast<float>(Real(f, "progress")));
  FillMetrics(f, job.mutable_metrics());
  job.set_queue_position(-1);
  if (long long ms = Int(f, "create_ms")) SetTime(ms, job.mutable_create_time());
  if (long long ms = Int(f, "start_ms")) SetTime(ms, job.mutable_start_time());
  if (long long ms = Int(f, "end_ms")) SetTime(ms, job.mutable_end_time());
  if (long long ms = Int(f, "update_ms")) SetTime(ms, job.mutable_update_time());
  if (!Str(f, "err_code").empty()) FillError(f, job.mutable_error());
  job.set_worker(Str(f, "worker"));
  return job;
}

bool ParseStreamId(const std::string& id, unsigned long long* ms, unsigned long long* seq) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(id, absl::MaxSplits('-', 1));
  return !parts.second.empty() && absl::SimpleAtoi(parts.first, ms) && absl::SimpleAtoi(parts.second, seq);
}

bool StreamIdLess(const std::string& a, const std::string& b) {
  unsigned long long am = 0, as = 0, bm = 0, bs = 0;
  ParseStreamId(a, &am, &as);
  ParseStreamId(b, &bm, &bs);
  return am < bm || (am == bm && as < bs);
}

absl::StatusOr<v1::JobEvent> EventFromEntry(const std::string& job_id, const RedisReply& entry) {
  if (entry.elements.size() != 2) return absl::DataLossError("malformed stream entry");
  v1::JobEvent ev;
  ev.set_cursor(entry.elements[0].str);
  ev.set_job_id(job_id);
  unsigned long long ms = 0, seq = 0;
  ParseStreamId(ev.cursor(), &ms, &seq);
  SetTime(static_cast<long long>(ms), ev.mutable_time());
  FieldMap f = ToFieldMap(entry.elements[1]);
  const std::string& type = Str(f, "type");
  if (type == "state") {
    auto* s = ev.mutable_state();
    s->set_state(StateFromName(Str(f, "state")));
    s->set_attempt(static_cast<int>(Int(f, "attempt")));
    s->set_reason(Str(f, "reason"));
    if (!Str(f, "err_code").empty()) FillError(f, s->mutable_error());
  } else if (type == "progress") {
    auto* p = ev.mutable_progress();
    p->set_stage(StageOf(Int(f, "stage")));
    p->set_step(static_cast<int>(Int(f, "step")));
    p->set_total_steps(static_cast<int>(Int(f, "total")));
    p->set_progress(static_cast<float>(Real(f, "progress")));
    FillMetrics(f, p->mutable_metrics());
    if (f.contains("eta_s")) *p->mutable_eta() = TimeUtil::MillisecondsToDuration(
        static_cast<long long>(Real(f, "eta_s") * 1000));
  } else if (type == "preview") {
    auto* p = ev.mutable_preview();
    p->set_png(Str(f, "png"));
    p->set_view(static_cast<int>(Int(f, "view")));
    p->set_stage(StageOf(Int(f, "stage")));
    p->set_step(static_cast<int>(Int(f, "step")));
  } else if (type == "log") {
    auto* l = ev.mutable_log();
    long long level = Int(f, "level");
    l->set_level(v1::JobEvent::Log::Level_IsValid(static_cast<int>(level))
                     ? static_cast<v1::JobEvent::Log::Level>(level)
                     : v1::JobEvent::Log::INFO);
    l->set_message(Str(f, "msg"));
  } else if (type == "artifact") {
    auto* a = ev.mutable_artifact()->mutable_artifact();
    a->set_name(Str(f, "name"));
    a->set_size_bytes(Int(f, "size"));
    a->set_sha256(Str(f, "sha256"));
    a->set_content_type(Str(f, "content_type"));
  } else {
    return absl::DataLossError(absl::StrCat("job ", job_id, ": unknown event type '", type, "'"));
  }
  return ev;
}

FieldList ProgressEventFields(const v1::JobEvent::Progress& p) {
  FieldList f = {{"type", "progress"},
                 {"stage", absl::StrCat(static_cast<int>(p.stage()))},
                 {"step", absl::StrCat(p.step())},
                 {"total", absl::StrCat(p.total_steps())},
                 {"progress", Num(p.progress())},
                 {"loss", Num(p.metrics().loss())},
                 {"reward", Num(p.metrics().reward())},
                 {"step_s", Num(p.metrics().step_seconds())}};
  if (p.has_eta()) f.emplace_back("eta_s", Num(TimeUtil::DurationToMilliseconds(p.eta()) / 1000.0));
  return f;
}

FieldList ProgressJobFields(const v1::JobEvent::Progress& p) {
  FieldList f = ProgressEventFields(p);
  f.erase(f.begin());  // no "type" on the job hash
  return f;
}

FieldList PreviewEventFields(const v1::JobEvent::Preview& p) {
  return {{"type", "preview"},
          {"png", p.png()},
          {"view", absl::StrCat(p.view())},
          {"stage", absl::StrCat(static_cast<int>(p.stage()))},
          {"step", absl::StrCat(p.step())}};
}

FieldList LogEventFields(const v1::JobEvent::Log& l) {
  return {{"type", "log"}, {"level", absl::StrCat(static_cast<int>(l.level()))}, {"msg", l.message()}};
}

}  // namespace psd3d
