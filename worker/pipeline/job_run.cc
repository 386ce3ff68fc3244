#include "worker/pipeline/job_run.h"

#include <torch/cuda.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "worker/formats/safetensors.h"
#include "worker/pipeline/pipeline.h"
#include "worker/pipeline/presets.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d {
namespace {

constexpr char kCheckpointFormat[] = "psd3d-checkpoint/1";

struct Pack {
  std::unique_ptr<tinyworld::TinyPrior> prior;
  std::unique_ptr<tinyworld::TinyReward> reward;
};

int ApiStage(PipelineStage s) { return static_cast<int>(s) + 1; }

// The pipeline configuration of a request: the quality's preset for the method, the negative prompt,
// the stage overrides, then the settings.
absl::StatusOr<PipelineConfig> RequestConfig(const JobRequest& r) {
  absl::StatusOr<GuidanceMethod> method = ParseGuidanceMethod(r.method);
  if (!method.ok()) return method.status();
  absl::StatusOr<Quality> quality = ParseQuality(r.quality);
  if (!quality.ok()) return quality.status();
  PipelineConfig c = PresetConfig(*quality, *method);
  for (GuidanceConfig* g : {&c.coarse.guidance, &c.geometry.guidance, &c.texture.guidance})
    g->negative_prompt = r.negative_prompt;
  for (const JobRequest::Override& o : r.overrides) {
    if (o.stage < 1 || o.stage > 4) return absl::InvalidArgumentError(absl::StrCat("stage override for unknown stage ", o.stage));
    StageOverride so;
    so.steps = o.steps;
    so.render_resolution = o.render_resolution;
    so.batch_views = o.batch_views;
    if (absl::Status s = ApplyStageOverride(static_cast<PipelineStage>(o.stage - 1), so, &c); !s.ok()) return s;
  }
  for (const std::string& setting : r.settings)
    if (absl::Status s = SetConfigValue(setting, &c); !s.ok()) return s;
  return c;
}

}  // namespace

std::string DefaultTinyPackDir() { return tinyworld::DefaultPackDir(); }

absl::Status CheckSettings(const std::vector<std::string>& settings) {
  PipelineConfig probe = PresetConfig(Quality::kDraft, GuidanceMethod::kPsd);
  for (const std::string& s : settings)
    if (absl::Status st = SetConfigValue(s, &probe); !st.ok()) return st;
  return absl::OkStatus();
}

struct JobModels::Impl {
  std::map<std::string, std::string> dirs;
  std::string device_name;
  at::Device device = at::kCPU;
  absl::Mutex mu;
  std::map<std::string, Pack> packs ABSL_GUARDED_BY(mu);

  absl::StatusOr<Pack*> Load(const std::string& name) {
    absl::MutexLock lock(&mu);
    if (auto it = packs.find(name); it != packs.end()) return &it->second;
    auto dir = dirs.find(name);
    if (dir == dirs.end()) {
      std::vector<std::string> names;
      for (const auto& [n, d] : dirs) names.push_back(n);
      return absl::FailedPreconditionError(
          absl::StrCat("model pack '", name, "' is not installed on this worker (", absl::StrJoin(names, ", "), ")"));
    }
    Pack pack;
    absl::StatusOr<std::unique_ptr<tinyworld::TinyPrior>> prior = tinyworld::TinyPrior::Load(dir->second, device);
    if (!prior.ok()) return prior.status();
    absl::StatusOr<std::unique_ptr<tinyworld::TinyReward>> reward = tinyworld::TinyReward::Load(dir->second, "reward", device);
    if (!reward.ok()) return reward.status();
    pack.prior = *std::move(prior);
    pack.reward = *std::move(reward);
    return &packs.emplace(name, std::move(pack)).first->second;
  }
};

JobModels::JobModels(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JobModels::~JobModels() = default;
const std::string& JobModels::device() const { return impl_->device_name; }

absl::StatusOr<std::unique_ptr<JobModels>> JobModels::Create(std::map<std::string, std::string> packs,
                                                             const std::string& device) {
  if (packs.empty()) return absl::InvalidArgumentError("no model pack configured");
  if (device != "cpu" && device != "cuda" && device != "auto")
    return absl::InvalidArgumentError(absl::StrCat("unknown device '", device, "' (cpu, cuda, auto)"));
  const bool cuda = torch::cuda::is_available();
  if (device == "cuda" && !cuda) return absl::FailedPreconditionError("device cuda asked for, but no CUDA device is available");
  auto impl = std::make_unique<Impl>();
  impl->dirs = std::move(packs);
  impl->device_name = device == "cpu" || !cuda ? "cpu" : "cuda";
  impl->device = impl->device_name == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  return std::unique_ptr<JobModels>(new JobModels(std::move(impl)));
}

struct JobRun::Impl {
  JobRequest request;
  Quality quality = Quality::kDraft;
  std::unique_ptr<Pipeline> pipeline;
};

JobRun::JobRun(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JobRun::~JobRun() = default;

absl::StatusOr<std::unique_ptr<JobRun>> JobRun::Create(JobModels& models, const std::string& pack,
                                                       const JobRequest& request) {
  absl::StatusOr<PipelineConfig> config = RequestConfig(request);
  if (!config.ok()) return config.status();
  absl::StatusOr<Pack*> p = models.impl_->Load(pack);
  if (!p.ok()) return p.status();
  auto impl = std::make_unique<Impl>();
  impl->request = request;
  impl->quality = *ParseQuality(request.quality);
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
      *(*p)->prior, (*p)->reward.get(), request.prompt, *config, request.seed, models.impl_->device);
  if (!pipeline.ok()) return pipeline.status();
  impl->pipeline = *std::move(pipeline);
  return std::unique_ptr<JobRun>(new JobRun(std::move(impl)));
}

absl::StatusOr<JobRunStep> JobRun::Step() {
  absl::StatusOr<PipelineStepReport> r = impl_->pipeline->Step();
  if (!r.ok()) return r.status();
  JobRunStep s;
  s.stage = ApiStage(r->stage);
  s.step = r->step;
  s.stage_steps = r->stage_steps;
  s.progress = r->progress;
  s.loss = r->detail.loss;
  s.reward = impl_->request.method == "reward_gradient" ? r->detail.guidance.render_reward : r->detail.guidance.reward_win;
  s.seconds = r->detail.seconds;
  return s;
}

bool JobRun::optimizing() const { return impl_->pipeline->stage() != PipelineStage::kExport; }
int JobRun::stage() const { return ApiStage(impl_->pipeline->stage()); }
int64_t JobRun::stage_step() const { return impl_->pipeline->stage_step(); }
int64_t JobRun::steps_done() const { return impl_->pipeline->steps_done(); }
int64_t JobRun::default_preview_interval() const { return impl_->quality == Quality::kDraft ? 20 : 100; }

absl::StatusOr<std::string> JobRun::Checkpoint() const {
  return SerializeSafetensors(impl_->pipeline->State(), {{"format", kCheckpointFormat}, {"identity", impl_->request.identity}});
}

absl::Status JobRun::Resume(const std::string& bytes) {
  absl::StatusOr<SafetensorsFile> file = ParseSafetensors(bytes);
  if (!file.ok()) return file.status();
  const std::map<std::string, std::string> expected = {{"format", kCheckpointFormat}, {"identity", impl_->request.identity}};
  if (file->metadata != expected)
    return absl::FailedPreconditionError("the checkpoint was written for a different job spec or format");
  return impl_->pipeline->LoadState(file->tensors);
}

absl::StatusOr<std::string> JobRun::PreviewPng(int64_t size) const { return impl_->pipeline->PreviewPng(size); }
absl::StatusOr<std::string> JobRun::ExportGlb() const { return impl_->pipeline->ExportGlb(); }

}  // namespace psd3d
