#include "worker/psd_engine.h"

#include <chrono>

#include <torch/cuda.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "worker/formats/safetensors.h"
#include "worker/pipeline/pipeline.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d {
namespace {

constexpr char kCheckpointFormat[] = "psd3d-checkpoint/1";

GuidanceMethod MethodOf(v1::JobSpec::Method m) {
  switch (m) {
    case v1::JobSpec::SDS: return GuidanceMethod::kSds;
    case v1::JobSpec::DREAMDPO: return GuidanceMethod::kDreamDpo;
    case v1::JobSpec::REWARD_GRADIENT: return GuidanceMethod::kRewardGradient;
    case v1::JobSpec::PSD_NO_NEGATIVE_OPT: return GuidanceMethod::kPsdFixedNegative;
    default: return GuidanceMethod::kPsd;
  }
}

Quality QualityOf(v1::JobSpec::Quality q) {
  switch (q) {
    case v1::JobSpec::STANDARD: return Quality::kStandard;
    case v1::JobSpec::HIGH: return Quality::kHigh;
    default: return Quality::kDraft;
  }
}

v1::Stage ApiStage(PipelineStage s) {
  switch (s) {
    case PipelineStage::kCoarse: return v1::STAGE_COARSE;
    case PipelineStage::kGeometry: return v1::STAGE_GEOMETRY;
    case PipelineStage::kTexture: return v1::STAGE_TEXTURE;
    case PipelineStage::kExport: return v1::STAGE_EXPORT;
  }
  return v1::STAGE_UNSPECIFIED;
}

// What a checkpoint must agree on with the job to be resumed (anything else changes the trajectory).
std::map<std::string, std::string> CheckpointIdentity(const v1::JobSpec& spec) {
  v1::JobSpec s = spec;
  s.set_preview_interval(0);  // previews do not change the trajectory
  std::string bytes;
  s.SerializeToString(&bytes);
  return {{"format", kCheckpointFormat}, {"spec", absl::StrCat(std::hash<std::string>{}(bytes))}};
}

struct Pack {
  std::unique_ptr<tinyworld::TinyPrior> prior;
  std::unique_ptr<tinyworld::TinyReward> reward;
};

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

absl::StatusOr<PipelineConfig> JobPipelineConfig(const v1::JobSpec& spec, const std::vector<std::string>& settings) {
  PipelineConfig c = PresetConfig(QualityOf(spec.quality()), MethodOf(spec.method()));
  for (GuidanceConfig* g : {&c.coarse.guidance, &c.geometry.guidance, &c.texture.guidance})
    g->negative_prompt = spec.negative_prompt();
  for (const v1::StageOverride& o : spec.stage_overrides()) {
    StageOverride so;
    if (o.has_steps()) so.steps = o.steps();
    if (o.has_render_resolution()) so.render_resolution = o.render_resolution();
    if (o.has_batch_views()) so.batch_views = o.batch_views();
    PipelineStage stage;
    switch (o.stage()) {
      case v1::STAGE_COARSE: stage = PipelineStage::kCoarse; break;
      case v1::STAGE_GEOMETRY: stage = PipelineStage::kGeometry; break;
      case v1::STAGE_TEXTURE: stage = PipelineStage::kTexture; break;
      case v1::STAGE_EXPORT: stage = PipelineStage::kExport; break;
      default: return absl::InvalidArgumentError(absl::StrCat("stage override for unknown stage ", o.stage()));
    }
    if (absl::Status s = ApplyStageOverride(stage, so, &c); !s.ok()) return s;
  }
  for (const std::string& setting : settings)
    if (absl::Status s = SetConfigValue(setting, &c); !s.ok()) return s;
  return c;
}

int64_t JobPreviewInterval(const v1::JobSpec& spec) {
  if (spec.preview_interval() > 0) return spec.preview_interval();
  return QualityOf(spec.quality()) == Quality::kDraft ? 20 : 100;
}

struct PsdEngine::Impl {
  PsdEngineOptions options;
  std::string device_name;
  at::Device device = at::kCPU;
  absl::Mutex mu;
  std::map<std::string, Pack> packs ABSL_GUARDED_BY(mu);

  absl::StatusOr<Pack*> LoadPack(const std::string& name) {
    absl::MutexLock lock(&mu);
    auto it = packs.find(name);
    if (it != packs.end()) return &it->second;
    auto dir = options.packs.find(name);
    if (dir == options.packs.end()) {
      std::vector<std::string> names;
      for (const auto& [n, d] : options.packs) names.push_back(n);
      return absl::FailedPreconditionError(absl::StrCat("model pack '", name, "' is not installed on this worker (",
                                                        absl::StrJoin(names, ", "), ")"));
    }
    Pack pack;
    absl::StatusOr<std::unique_ptr<tinyworld::TinyPrior>> prior = tinyworld::TinyPrior::Load(dir->second, device);
    if (!prior.ok()) return prior.status();
    absl::StatusOr<std::unique_ptr<tinyworld::TinyReward>> reward =
        tinyworld::TinyReward::Load(dir->second, "reward", device);
    if (!reward.ok()) return reward.status();
    pack.prior = *std::move(prior);
    pack.reward = *std::move(reward);
    return &packs.emplace(name, std::move(pack)).first->second;
  }
};

PsdEngine::PsdEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PsdEngine::~PsdEngine() = default;
const std::string& PsdEngine::device() const { return impl_->device_name; }

absl::StatusOr<std::unique_ptr<PsdEngine>> PsdEngine::Create(const PsdEngineOptions& options) {
  if (options.packs.empty()) return absl::InvalidArgumentError("psd engine: no model pack configured");
  if (options.preview_size < 16 || options.preview_size > 1024)
    return absl::InvalidArgumentError("psd engine: preview_size must be in [16, 1024]");
  for (const std::string& setting : options.settings) {
    PipelineConfig probe = PresetConfig(Quality::kDraft, GuidanceMethod::kPsd);
    if (absl::Status s = SetConfigValue(setting, &probe); !s.ok()) return s;
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const bool cuda = torch::cuda::is_available();
  if (options.device == "cuda" && !cuda)
    return absl::FailedPreconditionError("psd engine: --device=cuda but no CUDA device is available");
  if (options.device != "cpu" && options.device != "cuda" && options.device != "auto")
    return absl::InvalidArgumentError(absl::StrCat("psd engine: unknown device '", options.device, "' (cpu, cuda, auto)"));
  impl->device_name = options.device == "cpu" || !cuda ? "cpu" : "cuda";
  impl->device = impl->device_name == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  return std::unique_ptr<PsdEngine>(new PsdEngine(std::move(impl)));
}

absl::Status PsdEngine::Run(JobContext& ctx, const std::string* checkpoint) {
  const v1::JobSpec& spec = ctx.spec();
  absl::StatusOr<PipelineConfig> config = JobPipelineConfig(spec, impl_->options.settings);
  if (!config.ok()) return config.status();
  absl::StatusOr<Pack*> pack = impl_->LoadPack(spec.model_pack().empty() ? "tiny" : spec.model_pack());
  if (!pack.ok()) return pack.status();
  absl::StatusOr<std::unique_ptr<Pipeline>> created =
      Pipeline::Create(*(*pack)->prior, (*pack)->reward.get(), spec.prompt(), *config, spec.seed(), impl_->device);
  if (!created.ok()) return created.status();

  if (checkpoint != nullptr) {
    absl::StatusOr<SafetensorsFile> file = ParseSafetensors(*checkpoint);
    absl::Status loaded = file.ok() ? absl::OkStatus() : file.status();
    if (loaded.ok() && file->metadata != CheckpointIdentity(spec))
      loaded = absl::FailedPreconditionError("it was written for a different job spec or format");
    if (loaded.ok()) loaded = (*created)->LoadState(file->tensors);
    if (loaded.ok()) {
      ctx.Log(v1::JobEvent::Log::INFO, absl::StrCat("resumed at ", PipelineStageName((*created)->stage()), " step ",
                                                    (*created)->stage_step()));
    } else {
      ctx.Log(v1::JobEvent::Log::WARNING, absl::StrCat("checkpoint ignored (", loaded.message(), "); starting over"));
      created = Pipeline::Create(*(*pack)->prior, (*pack)->reward.get(), spec.prompt(), *config, spec.seed(), impl_->device);
      if (!created.ok()) return created.status();
    }
  }
  Pipeline& p = **created;
  auto save = [&]() -> absl::Status {
    absl::StatusOr<std::string> bytes = SerializeSafetensors(p.State(), CheckpointIdentity(spec));
    if (!bytes.ok()) return bytes.status();
    return ctx.SaveCheckpoint(*bytes, static_cast<int>(p.steps_done()));
  };
  auto preview = [&](PipelineStage stage, int64_t step) -> absl::Status {
    absl::StatusOr<std::string> png = p.PreviewPng(impl_->options.preview_size);
    if (!png.ok()) return png.status();
    return ctx.Preview(*png, -1, ApiStage(stage), static_cast<int>(step));
  };

  const int64_t preview_every = JobPreviewInterval(spec);
  while (p.stage() != PipelineStage::kExport) {
    absl::StatusOr<PipelineStepReport> r = p.Step();
    if (!r.ok()) return r.status();
    StepReport report;
    report.stage = ApiStage(r->stage);
    report.step = static_cast<int>(r->step);
    report.total_steps = static_cast<int>(r->stage_steps);
    report.progress = static_cast<float>(r->progress);
    report.loss = r->detail.loss;
    report.reward = spec.method() == v1::JobSpec::REWARD_GRADIENT ? r->detail.guidance.render_reward
                                                                  : r->detail.guidance.reward_win;
    report.step_seconds = r->detail.seconds;
    if (absl::Status s = ctx.Step(report); !s.ok()) {
      if (ctx.stop_reason() == StopReason::kShutdown) (void)save();
      return s;
    }
    const bool stage_done = r->step == r->stage_steps;
    if (r->step % preview_every == 0 || stage_done) {
      // The stage's last step has already built the next stage: preview what the finished one made.
      if (absl::Status s = preview(r->stage, r->step); !s.ok()) return s;
    }
    if (stage_done || ctx.CheckpointDue()) {
      if (absl::Status s = save(); !s.ok()) return s;
    }
  }

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> glb = p.ExportGlb();
  if (!glb.ok()) return glb.status();
  StepReport done;
  done.stage = v1::STAGE_EXPORT;
  done.step = done.total_steps = 1;
  done.progress = 1;
  done.step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (absl::Status s = ctx.Step(done); !s.ok()) return s;
  absl::StatusOr<std::string> png = p.PreviewPng(impl_->options.preview_size);
  if (!png.ok()) return png.status();
  if (absl::Status s = ctx.PutArtifact("preview.png", *png, "image/png"); !s.ok()) return s;
  return ctx.PutArtifact("mesh.glb", *glb, "model/gltf-binary");
}

}  // namespace psd3d
