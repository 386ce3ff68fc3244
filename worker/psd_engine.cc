#include "worker/psd_engine.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/pipeline/job_run.h"

namespace psd3d {
namespace {

std::string MethodName(v1::JobSpec::Method m) {
  switch (m) {
    case v1::JobSpec::SDS: return "sds";
    case v1::JobSpec::DREAMDPO: return "dreamdpo";
    case v1::JobSpec::REWARD_GRADIENT: return "reward_gradient";
    case v1::JobSpec::PSD_NO_NEGATIVE_OPT: return "psd_fixed_negative";
    default: return "psd";
  }
}

std::string QualityName(v1::JobSpec::Quality q) {
  switch (q) {
    case v1::JobSpec::STANDARD: return "standard";
    case v1::JobSpec::HIGH: return "high";
    default: return "draft";
  }
}

JobRequest RequestOf(const v1::JobSpec& spec, const std::vector<std::string>& settings) {
  JobRequest r;
  r.prompt = spec.prompt();
  r.negative_prompt = spec.negative_prompt();
  r.seed = spec.seed();
  r.method = MethodName(spec.method());
  r.quality = QualityName(spec.quality());
  for (const v1::StageOverride& o : spec.stage_overrides()) {
    JobRequest::Override ro;
    ro.stage = o.stage();
    if (o.has_steps()) ro.steps = o.steps();
    if (o.has_render_resolution()) ro.render_resolution = o.render_resolution();
    if (o.has_batch_views()) ro.batch_views = o.batch_views();
    r.overrides.push_back(ro);
  }
  r.settings = settings;
  // A checkpoint resumes only the same trajectory: the spec (less the preview period) and settings.
  v1::JobSpec s = spec;
  s.set_preview_interval(0);
  std::string bytes;
  s.SerializeToString(&bytes);
  for (const std::string& setting : settings) absl::StrAppend(&bytes, "\n", setting);
  r.identity = absl::StrCat(std::hash<std::string>{}(bytes));
  return r;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParsePackList(absl::string_view list) {
  std::map<std::string, std::string> packs;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || kv.second.empty())
      return absl::InvalidArgumentError(absl::StrCat("pack list: '", item, "' is not name=directory"));
    packs[kv.first] = kv.second;
  }
  if (packs.empty()) return absl::InvalidArgumentError("pack list: no pack given");
  return packs;
}

struct PsdEngine::Impl {
  PsdEngineOptions options;
  std::unique_ptr<JobModels> models;
};

PsdEngine::PsdEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PsdEngine::~PsdEngine() = default;
const std::string& PsdEngine::device() const { return impl_->models->device(); }

absl::StatusOr<std::unique_ptr<PsdEngine>> PsdEngine::Create(const PsdEngineOptions& options) {
  if (options.preview_size < 16 || options.preview_size > 1024)
    return absl::InvalidArgumentError("psd engine: preview_size must be in [16, 1024]");
  if (absl::Status s = CheckSettings(options.settings); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<JobModels>> models = JobModels::Create(options.packs, options.device);
  if (!models.ok()) return absl::Status(models.status().code(), absl::StrCat("psd engine: ", models.status().message()));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->models = *std::move(models);
  return std::unique_ptr<PsdEngine>(new PsdEngine(std::move(impl)));
}

absl::Status PsdEngine::Run(JobContext& ctx, const std::string* checkpoint) {
  const v1::JobSpec& spec = ctx.spec();
  const JobRequest request = RequestOf(spec, impl_->options.settings);
  const std::string pack = spec.model_pack().empty() ? "tiny" : spec.model_pack();
  absl::StatusOr<std::unique_ptr<JobRun>> created = JobRun::Create(*impl_->models, pack, request);
  if (!created.ok()) return created.status();
  if (checkpoint != nullptr) {
    if (absl::Status s = (*created)->Resume(*checkpoint); s.ok()) {
      ctx.Log(v1::JobEvent::Log::INFO,
              absl::StrCat("resumed at stage ", (*created)->stage(), " step ", (*created)->stage_step()));
    } else {
      ctx.Log(v1::JobEvent::Log::WARNING, absl::StrCat("checkpoint ignored (", s.message(), "); starting over"));
      created = JobRun::Create(*impl_->models, pack, request);  // a failed resume may leave it half loaded
      if (!created.ok()) return created.status();
    }
  }
  JobRun& run = **created;
  auto save = [&]() -> absl::Status {
    absl::StatusOr<std::string> bytes = run.Checkpoint();
    if (!bytes.ok()) return bytes.status();
    return ctx.SaveCheckpoint(*bytes, static_cast<int>(run.steps_done()));
  };
  auto preview = [&](int stage, int64_t step) -> absl::Status {
    absl::StatusOr<std::string> png = run.PreviewPng(impl_->options.preview_size);
    if (!png.ok()) return png.status();
    return ctx.Preview(*png, -1, static_cast<v1::Stage>(stage), static_cast<int>(step));
  };

  const int64_t preview_every = spec.preview_interval() > 0 ? spec.preview_interval() : run.default_preview_interval();
  while (run.optimizing()) {
    absl::StatusOr<JobRunStep> r = run.Step();
    if (!r.ok()) return r.status();
    StepReport report;
    report.stage = static_cast<v1::Stage>(r->stage);
    report.step = static_cast<int>(r->step);
    report.total_steps = static_cast<int>(r->stage_steps);
    report.progress = static_cast<float>(r->progress);
    report.loss = r->loss;
    report.reward = r->reward;
    report.step_seconds = r->seconds;
    if (absl::Status s = ctx.Step(report); !s.ok()) {
      if (ctx.stop_reason() == StopReason::kShutdown) (void)save();
      return s;
    }
    const bool stage_done = r->step == r->stage_steps;
    if (r->step % preview_every == 0 || stage_done) {
      // After a stage's last step the next stage is already built: the preview shows where it starts.
      if (absl::Status s = preview(r->stage, r->step); !s.ok()) return s;
    }
    if (stage_done || ctx.CheckpointDue()) {
      if (absl::Status s = save(); !s.ok()) return s;
    }
  }

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> glb = run.ExportGlb();
  if (!glb.ok()) return glb.status();
  StepReport done;
  done.stage = v1::STAGE_EXPORT;
  done.step = done.total_steps = 1;
  done.progress = 1;
  done.step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (absl::Status s = ctx.Step(done); !s.ok()) return s;
  absl::StatusOr<std::string> png = run.PreviewPng(impl_->options.preview_size);
  if (!png.ok()) return png.status();
  if (absl::Status s = ctx.PutArtifact("preview.png", *png, "image/png"); !s.ok()) return s;
  return ctx.PutArtifact("mesh.glb", *glb, "model/gltf-binary");
}

}  // namespace psd3d
