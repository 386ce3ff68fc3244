#include "client/commands.h"

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/download.h"
#include "client/errors.h"
#include "client/names.h"
#include "client/output.h"
#include "client/watch.h"
#include "common/validation.h"
#include "google/protobuf/struct.pb.h"

ABSL_FLAG(std::string, negative, "", "submit, generate: negative prompt, what the object must not look like");
ABSL_FLAG(int64_t, seed, -1, "submit, generate: random seed; -1 lets the server pick one (recorded in the job)");
ABSL_FLAG(std::string, method, "", "submit, generate: psd (default), sds, dreamdpo, reward_gradient or psd_no_negative_opt");
ABSL_FLAG(std::string, quality, "", "submit, generate: draft (default), standard or high");
ABSL_FLAG(std::string, pack, "", "submit: model pack; empty: the server's default");
ABSL_FLAG(int, priority, 0, "submit: 0..9, higher runs first");
ABSL_FLAG(std::vector<std::string>, label, {},
          "submit: labels to set; list: labels that must all match. key=value, comma-separated or repeated");
ABSL_FLAG(std::string, request_id, "", "submit: idempotency key; submitting it again returns the same job");
ABSL_FLAG(std::string, steps, "", "submit, generate: optimization steps per stage, e.g. coarse=100,geometry=50,texture=50");
ABSL_FLAG(std::string, resolution, "",
          "submit, generate: render resolution per stage (multiple of 8), e.g. coarse=64,texture=512; export= sets the "
          "texture atlas size");
ABSL_FLAG(int, preview_interval, 0, "submit, generate: steps between previews; 0: the quality preset's default");
ABSL_FLAG(bool, wait, false,
          "submit: follow the job with a progress bar, save its previews, and download the mesh if it succeeds");
ABSL_FLAG(std::string, previews_dir, "",
          "submit --wait, watch, generate: directory for preview PNGs (<stage>_<step>_view<N>.png, or _grid.png); "
          "submit --wait defaults to previews/<job_id>/, watch saves none without it");
ABSL_FLAG(std::string, output, "", "submit --wait, download, generate: output file; default <job_id>.glb for mesh.glb");
ABSL_FLAG(std::string, o, "", "Short for --output");
ABSL_FLAG(std::vector<std::string>, state, {}, "list: only jobs in these states, e.g. queued,running");
ABSL_FLAG(std::string, order, "newest", "list: newest or oldest first");
ABSL_FLAG(int, page_size, 0, "list: jobs per page, 1..1000; 0: the server's default (50)");
ABSL_FLAG(std::string, page_token, "", "list: continue from a previous page's token");
ABSL_FLAG(bool, all, false, "list: follow the page tokens until every matching job is listed");
ABSL_FLAG(std::string, after, "", "watch: resume after this event cursor (printed with each event by --json)");

namespace psd3d::cli {
namespace {

absl::Status FlagError(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

absl::Status ParseLabels(const std::vector<std::string>& items, google::protobuf::Map<std::string, std::string>* out) {
  for (const std::string& item : items) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || item.find('=') == std::string::npos) {
      return FlagError("label", absl::StrCat("'", item, "' is not key=value"));
    }
    (*out)[kv.first] = kv.second;
  }
  return absl::OkStatus();
}

// Parses "coarse=100,geometry=50" for --steps and --resolution.
absl::StatusOr<std::map<v1::Stage, int>> ParseStageValues(absl::string_view flag, const std::string& text) {
  std::map<v1::Stage, int> values;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    int value = 0;
    if (!absl::SimpleAtoi(kv.second, &value)) {
      return FlagError(flag, absl::StrCat("'", item, "' is not stage=number"));
    }
    auto stage = ParseStage(absl::StripAsciiWhitespace(kv.first));
    if (!stage.ok()) return FlagError(flag, absl::StrCat("stage ", stage.status().message()));
    if (!values.emplace(*stage, value).second) {
      return FlagError(flag, absl::StrCat(StageName(*stage), " is given twice"));
    }
  }
  return values;
}

}  // namespace

absl::StatusOr<v1::SubmitJobRequest> BuildSubmitRequest(const std::string& prompt) {
  v1::SubmitJobRequest req;
  v1::JobSpec* spec = req.mutable_spec();
  spec->set_prompt(prompt);
  spec->set_negative_prompt(absl::GetFlag(FLAGS_negative));
  if (const int64_t seed = absl::GetFlag(FLAGS_seed); seed >= 0) {
    spec->set_seed(static_cast<uint64_t>(seed));
  } else if (seed != -1) {
    return FlagError("seed", "must be at least 0, or -1 to let the server pick");
  }
  if (const std::string m = absl::GetFlag(FLAGS_method); !m.empty()) {
    auto method = ParseMethod(m);
    if (!method.ok()) return FlagError("method", method.status().message());
    spec->set_method(*method);
  }
  if (const std::string q = absl::GetFlag(FLAGS_quality); !q.empty()) {
    auto quality = ParseQuality(q);
    if (!quality.ok()) return FlagError("quality", quality.status().message());
    spec->set_quality(*quality);
  }
  spec->set_model_pack(absl::GetFlag(FLAGS_pack));
  auto steps = ParseStageValues("steps", absl::GetFlag(FLAGS_steps));
  if (!steps.ok()) return steps.status();
  auto resolution = ParseStageValues("resolution", absl::GetFlag(FLAGS_resolution));
  if (!resolution.ok()) return resolution.status();
  std::map<v1::Stage, v1::StageOverride> overrides;
  for (const auto& [stage, n] : *steps) overrides[stage].set_steps(n);
  for (const auto& [stage, n] : *resolution) overrides[stage].set_render_resolution(n);
  for (auto& [stage, o] : overrides) {
    o.set_stage(stage);
    *spec->add_stage_overrides() = o;
  }
  spec->set_preview_interval(absl::GetFlag(FLAGS_preview_interval));
  req.set_priority(absl::GetFlag(FLAGS_priority));
  if (auto s = ParseLabels(absl::GetFlag(FLAGS_label), req.mutable_labels()); !s.ok()) return s;
  req.set_request_id(absl::GetFlag(FLAGS_request_id));
  // Catches mistakes before the round trip. Only the server knows its model packs, so any is let through.
  ValidationLimits limits;
  limits.model_packs = {spec->model_pack()};
  if (auto s = ValidateSubmit(req, limits); !s.ok()) return s;
  return req;
}

std::string OutputFlag() {
  const std::string o = absl::GetFlag(FLAGS_o);
  return o.empty() ? absl::GetFlag(FLAGS_output) : o;
}

std::string PreviewsDirFlag() { return absl::GetFlag(FLAGS_previews_dir); }

namespace {

std::string DefaultOutput(const std::string& job_id, const std::string& name) {
  return name == "mesh.glb" ? job_id + ".glb" : absl::StrCat(job_id, "_", name);
}

grpc::Status FetchJob(const Context& ctx, const std::string& job_id, v1::Job* job) {
  grpc::ClientContext rpc;
  ctx.SetUnaryDeadline(&rpc);
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  return ctx.stub->GetJob(&rpc, req, job);
}

std::string DownloadedLine(const std::string& path, const v1::Artifact& a) {
  return absl::StrCat("saved ", path, " (", FormatBytes(a.size_bytes()), ", sha256 ", a.sha256(), " verified)");
}

// Follows a just-submitted job to its end and fetches its mesh. stdout gets the result: the final job as
// JSON, or the saved file's line; the journey goes to stderr.
int WaitForJob(const Context& ctx, const std::string& job_id) {
  WatchOptions options;
  options.previews_dir = absl::GetFlag(FLAGS_previews_dir);
  if (options.previews_dir.empty()) options.previews_dir = absl::StrCat("previews/", job_id, "/");
  options.print_events = false;
  const int code = WatchJob(ctx, job_id, options);
  if (code != kExitOk && code != kExitJobFailed) return code;
  v1::Job job;
  if (grpc::Status s = FetchJob(ctx, job_id, &job); !s.ok()) return ReportRpcError(ctx, "get " + job_id, s);
  if (job.state() != v1::Job::SUCCEEDED) {
    if (ctx.json) std::cout << ToJson(job) << "\n";
    std::string why = job.has_error() ? absl::StrCat(": ", job.error().code(), ": ", job.error().message()) : "";
    return Fail(kExitJobFailed, absl::StrCat("job ", job_id, " ended ", StateName(job.state()), why));
  }
  std::string path = OutputFlag();
  if (path.empty()) path = DefaultOutput(job_id, "mesh.glb");
  v1::Artifact mesh;
  if (int rc = DownloadArtifact(ctx, job_id, "mesh.glb", path, &mesh); rc != kExitOk) return rc;
  std::cout << (ctx.json ? ToJson(job) : DownloadedLine(path, mesh)) << "\n";
  return kExitOk;
}

// For subcommands that take exactly one JOB_ID: kExitOk, or the usage error's code.
int ExpectOneJobId(const Context& ctx, absl::string_view command) {
  if (ctx.args.size() == 1) return kExitOk;
  return UsageError(absl::StrCat(command, " takes one JOB_ID, e.g. psd3d ", command, " 01ARZ3NDEKTSV4RRFFQ69G5FAV"));
}

}  // namespace

int Submit(const Context& ctx) {
  if (ctx.args.size() != 1) return UsageError("submit takes one PROMPT, quoted: psd3d submit \"a red cube\"");
  auto req = BuildSubmitRequest(ctx.args[0]);
  if (!req.ok()) return UsageError(absl::StrCat("submit: ", req.status().message()));
  grpc::ClientContext rpc;
  ctx.SetUnaryDeadline(&rpc);
  v1::Job job;
  if (grpc::Status s = ctx.stub->SubmitJob(&rpc, *req, &job); !s.ok()) return ReportRpcError(ctx, "submit", s);
  if (!absl::GetFlag(FLAGS_wait)) {
    std::cout << (ctx.json ? ToJson(job) : job.id()) << "\n";
    return kExitOk;
  }
  // Humans see the id right away (to watch or cancel from elsewhere); JSON users get the final job.
  (ctx.json ? std::cerr : std::cout) << job.id() << std::endl;
  return WaitForJob(ctx, job.id());
}

int Get(const Context& ctx) {
  if (int rc = ExpectOneJobId(ctx, "get"); rc != kExitOk) return rc;
  v1::Job job;
  if (grpc::Status s = FetchJob(ctx, ctx.args[0], &job); !s.ok()) return ReportRpcError(ctx, "get " + ctx.args[0], s);
  std::cout << (ctx.json ? ToJson(job) + "\n" : FormatJob(job));
  return kExitOk;
}

int List(const Context& ctx) {
  if (!ctx.args.empty()) return UsageError("list takes no arguments; filter with --state and --label");
  v1::ListJobsRequest req;
  for (const std::string& name : absl::GetFlag(FLAGS_state)) {
    auto state = ParseState(name);
    if (!state.ok()) return UsageError(absl::StrCat("--state: ", state.status().message()));
    req.add_states(*state);
  }
  if (auto s = ParseLabels(absl::GetFlag(FLAGS_label), req.mutable_labels()); !s.ok()) return UsageError(s.message());
  const std::string order = absl::AsciiStrToLower(absl::GetFlag(FLAGS_order));
  if (order != "newest" && order != "oldest") return UsageError("--order: must be newest or oldest");
  req.set_order(order == "oldest" ? v1::ListJobsRequest::OLDEST_FIRST : v1::ListJobsRequest::NEWEST_FIRST);
  req.set_page_size(absl::GetFlag(FLAGS_page_size));
  req.set_page_token(absl::GetFlag(FLAGS_page_token));
  const bool all = absl::GetFlag(FLAGS_all);
  if (auto s = ValidateListRequest(req); !s.ok()) return UsageError(s.message());
  v1::ListJobsResponse merged;  // --json prints one response, with every page's jobs under --all
  for (int page = 0;; ++page) {
    grpc::ClientContext rpc;
    ctx.SetUnaryDeadline(&rpc);
    v1::ListJobsResponse resp;
    if (grpc::Status s = ctx.stub->ListJobs(&rpc, req, &resp); !s.ok()) return ReportRpcError(ctx, "list jobs", s);
    if (!ctx.json && page == 0) std::cout << JobTableHeader();
    for (const v1::Job& job : resp.jobs()) {
      if (ctx.json) {
        *merged.add_jobs() = job;
      } else {
        std::cout << FormatJobRow(job);
      }
    }
    merged.set_next_page_token(resp.next_page_token());
    if (!all || resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  if (ctx.json) {
    std::cout << ToJson(merged) << "\n";
  } else if (!merged.next_page_token().empty()) {
    std::cerr << "more jobs: --page_token=" << merged.next_page_token() << " (or --all)\n";
  }
  return kExitOk;
}

int Cancel(const Context& ctx) {
  if (int rc = ExpectOneJobId(ctx, "cancel"); rc != kExitOk) return rc;
  grpc::ClientContext rpc;
  ctx.SetUnaryDeadline(&rpc);
  v1::CancelJobRequest req;
  req.set_job_id(ctx.args[0]);
  v1::Job job;
  if (grpc::Status s = ctx.stub->CancelJob(&rpc, req, &job); !s.ok()) {
    return ReportRpcError(ctx, "cancel " + ctx.args[0], s);
  }
  if (ctx.json) {
    std::cout << ToJson(job) << "\n";
    return kExitOk;
  }
  std::cout << job.id() << ": " << StateName(job.state());
  if (job.state() == v1::Job::CANCELLING) std::cout << " (the worker stops within one optimization step)";
  if (job.state() == v1::Job::SUCCEEDED || job.state() == v1::Job::FAILED) std::cout << " (had already finished)";
  std::cout << "\n";
  return kExitOk;
}

int Watch(const Context& ctx) {
  if (int rc = ExpectOneJobId(ctx, "watch"); rc != kExitOk) return rc;
  WatchOptions options;
  options.after_cursor = absl::GetFlag(FLAGS_after);
  options.previews_dir = absl::GetFlag(FLAGS_previews_dir);
  return WatchJob(ctx, ctx.args[0], options);
}

int Download(const Context& ctx) {
  if (ctx.args.empty() || ctx.args.size() > 2) {
    return UsageError("download takes JOB_ID and optionally an artifact NAME");
  }
  const std::string& job_id = ctx.args[0];
  const std::string name = ctx.args.size() == 2 ? ctx.args[1] : "mesh.glb";
  std::string path = OutputFlag();
  if (path.empty()) path = DefaultOutput(job_id, name);
  v1::Artifact a;
  if (int rc = DownloadArtifact(ctx, job_id, name, path, &a); rc != kExitOk) return rc;
  if (ctx.json) {
    google::protobuf::Struct result;
    auto& fields = *result.mutable_fields();
    fields["path"].set_string_value(path);
    fields["name"].set_string_value(name);
    fields["size_bytes"].set_number_value(static_cast<double>(a.size_bytes()));
    fields["sha256"].set_string_value(a.sha256());
    std::cout << ToJson(result) << "\n";
  } else {
    std::cout << DownloadedLine(path, a) << "\n";
  }
  return kExitOk;
}

}  // namespace psd3d::cli
