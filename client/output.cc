#include "client/output.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "client/names.h"
#include "google/protobuf/util/json_util.h"

namespace psd3d::cli {
namespace {

std::string FormatTime(const google::protobuf::Timestamp& t, const char* format = "%Y-%m-%d %H:%M:%S") {
  const absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime(format, time, absl::LocalTimeZone());
}

std::string FormatPercent(float progress) { return absl::StrFormat("%.1f%%", progress * 100); }

std::string FormatError(const v1::JobError& e) { return absl::StrCat(e.code(), ": ", e.message()); }

// At most `max_bytes` of `text` on one line, cut at a UTF-8 character boundary.
std::string Truncate(const std::string& text, size_t max_bytes) {
  std::string flat = absl::StrReplaceAll(text, {{"\n", " "}, {"\t", " "}});
  if (flat.size() <= max_bytes) return flat;
  size_t cut = max_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(flat[cut]) & 0xC0) == 0x80) --cut;
  return flat.substr(0, cut) + "...";
}

std::string FormatOverrides(const v1::JobSpec& spec) {
  std::vector<std::string> parts;
  for (const auto& o : spec.stage_overrides()) {
    std::vector<std::string> knobs;
    if (o.has_steps()) knobs.push_back(absl::StrCat("steps=", o.steps()));
    if (o.has_render_resolution()) knobs.push_back(absl::StrCat("resolution=", o.render_resolution()));
    if (o.has_batch_views()) knobs.push_back(absl::StrCat("batch_views=", o.batch_views()));
    parts.push_back(absl::StrCat(StageName(o.stage()), " ", absl::StrJoin(knobs, " ")));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Cannot fail for a well-formed generated message.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string FormatJob(const v1::Job& job) {
  std::string out;
  auto line = [&out](absl::string_view key, absl::string_view value) {
    absl::StrAppendFormat(&out, "%-11s %s\n", absl::StrCat(key, ":"), value);
  };
  const v1::JobSpec& spec = job.spec();
  line("Job", job.id());
  std::string state = StateName(job.state());
  if (job.attempt() > 0) absl::StrAppend(&state, "  attempt ", job.attempt(), "/", job.max_attempts());
  if (!job.worker().empty()) absl::StrAppend(&state, "  on ", job.worker());
  line("State", state);
  line("Prompt", spec.prompt());
  if (!spec.negative_prompt().empty()) line("Negative", spec.negative_prompt());
  line("Spec", absl::StrCat(MethodName(spec.method()), ", ", QualityName(spec.quality()), ", pack ", spec.model_pack(),
                            ", seed ", spec.seed(), ", priority ", job.priority()));
  if (spec.stage_overrides_size() > 0) line("Overrides", FormatOverrides(spec));
  if (job.labels_size() > 0) {
    const std::map<std::string, std::string> sorted(job.labels().begin(), job.labels().end());
    line("Labels", absl::StrJoin(sorted, ", ", absl::PairFormatter("=")));
  }
  if (!job.request_id().empty()) line("Request id", job.request_id());
  if (job.state() == v1::Job::QUEUED && job.queue_position() >= 0) {
    line("Queue", job.queue_position() == 0 ? "next to run" : absl::StrCat(job.queue_position(), " jobs ahead"));
  }
  std::string progress = FormatPercent(job.progress());
  if (job.stage() != v1::STAGE_UNSPECIFIED) {
    absl::StrAppend(&progress, "  (", StageName(job.stage()), " step ", job.step(), "/", job.total_steps(), ")");
  }
  line("Progress", progress);
  if (job.stage() != v1::STAGE_UNSPECIFIED) {
    line("Metrics", absl::StrFormat("%s  step %.3fs", FormatMetrics(job.metrics()), job.metrics().step_seconds()));
  }
  if (job.has_eta()) line("ETA", FormatDuration(job.eta()));
  if (job.has_create_time()) line("Created", FormatTime(job.create_time()));
  if (job.has_start_time()) line("Started", FormatTime(job.start_time()));
  if (job.has_end_time()) line("Ended", FormatTime(job.end_time()));
  if (job.has_update_time()) line("Updated", FormatTime(job.update_time()));
  if (job.has_error()) line("Error", FormatError(job.error()));
  if (job.artifacts_size() > 0) {
    out += "Artifacts:\n";
    for (const auto& a : job.artifacts()) {
      absl::StrAppendFormat(&out, "  %-12s %10s  %s  sha256 %s\n", a.name(), FormatBytes(a.size_bytes()),
                            a.content_type(), a.sha256());
    }
  }
  return out;
}

constexpr char kRowFormat[] = "%-26s  %-10s  %-19s  %-8s  %6s  %-16s  %s\n";

std::string JobTableHeader() {
  return absl::StrFormat(kRowFormat, "ID", "STATE", "METHOD", "QUALITY", "PROG", "CREATED", "PROMPT");
}

std::string FormatJobRow(const v1::Job& job) {
  return absl::StrFormat(kRowFormat, job.id(), StateName(job.state()), MethodName(job.spec().method()),
                         QualityName(job.spec().quality()), FormatPercent(job.progress()),
                         job.has_create_time() ? FormatTime(job.create_time(), "%Y-%m-%d %H:%M") : "-",
                         Truncate(job.spec().prompt(), 48));
}

std::string FormatEvent(const v1::JobEvent& e) {
  std::string out = absl::StrCat(FormatTime(e.time(), "%H:%M:%S"), "  ");
  switch (e.kind_case()) {
    case v1::JobEvent::kState: {
      const auto& s = e.state();
      absl::StrAppend(&out, "state     ", StateName(s.state()));
      if (s.attempt() > 0) absl::StrAppend(&out, "  attempt ", s.attempt());
      if (!s.reason().empty()) absl::StrAppend(&out, "  (", s.reason(), ")");
      if (s.has_error()) absl::StrAppend(&out, "  ", FormatError(s.error()));
      break;
    }
    case v1::JobEvent::kProgress: {
      const auto& p = e.progress();
      absl::StrAppend(&out, "progress  ", StageName(p.stage()), " ", p.step(), "/", p.total_steps(), "  ",
                      FormatPercent(p.progress()), "  ", FormatMetrics(p.metrics()));
      if (p.has_eta()) absl::StrAppend(&out, "  ETA ", FormatDuration(p.eta()));
      break;
    }
    case v1::JobEvent::kPreview: {
      const auto& p = e.preview();
      absl::StrAppend(&out, "preview   ", StageName(p.stage()), " step ", p.step(), " ",
                      p.view() < 0 ? std::string("grid") : absl::StrCat("view ", p.view()), "  (",
                      FormatBytes(static_cast<int64_t>(p.png().size())), " PNG)");
      break;
    }
    case v1::JobEvent::kLog:
      absl::StrAppend(&out, "log       ", v1::JobEvent::Log::Level_Name(e.log().level()), "  ", e.log().message());
      break;
    case v1::JobEvent::kArtifact: {
      const auto& a = e.artifact().artifact();
      absl::StrAppend(&out, "artifact  ", a.name(), "  ", FormatBytes(a.size_bytes()), "  sha256 ", a.sha256());
      break;
    }
    case v1::JobEvent::KIND_NOT_SET:
      absl::StrAppend(&out, "(unknown event kind)");
      break;
  }
  return out;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  for (; v >= 1024 && u < 3; ++u) v /= 1024;
  return absl::StrFormat("%.1f %s", v, units[u]);
}

std::string FormatDuration(const google::protobuf::Duration& d) {
  const int64_t s = d.seconds();
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string FormatMetrics(const v1::JobMetrics& m) {
  return absl::StrFormat("loss %.4f  reward %.4f", m.loss(), m.reward());
}

}  // namespace psd3d::cli
