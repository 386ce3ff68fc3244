#include "worker/pipeline/nerf_stage.h"

#include <chrono>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"
#include "worker/optim/adam.h"
#include "worker/pipeline/stage_common.h"
#include "worker/render/volume_renderer.h"
#include "worker/tinyworld/scene_render.h"

namespace psd3d {
namespace {

// Renders through the volume renderer: [B,3,size,size], differentiable w.r.t. the field.
at::Tensor RenderField(const NerfField& field, const CameraBatch& cams, int64_t render_size, int64_t samples,
                       bool stratified, at::Generator* gen, at::Tensor* opacity) {
  VolumeRenderOptions o;
  o.height = o.width = render_size;
  o.samples_per_ray = samples;
  o.radius = field.config().radius;
  o.stratified = stratified;
  VolumeRender r = RenderVolume([&field](const at::Tensor& p) { return field.Forward(p); }, cams, o, gen);
  if (opacity != nullptr) *opacity = r.opacity;
  return r.rgb.permute({0, 3, 1, 2});
}

}  // namespace

absl::Status ValidateNerfStageConfig(const NerfStageConfig& c) {
  if (c.steps < 1) return absl::InvalidArgumentError("nerf stage: steps must be at least 1");
  if (c.views < 1 || c.views > 64) return absl::InvalidArgumentError("nerf stage: views must be in [1, 64]");
  if (c.render_size < 8 || c.render_size > 1024)
    return absl::InvalidArgumentError("nerf stage: render_size must be in [8, 1024]");
  if (c.samples_per_ray < 4 || c.samples_per_ray > 1024)
    return absl::InvalidArgumentError("nerf stage: samples_per_ray must be in [4, 1024]");
  if (!(c.lr_encoding > 0) || !(c.lr_mlp > 0)) return absl::InvalidArgumentError("nerf stage: learning rates must be > 0");
  if (!(c.sparsity_weight >= 0)) return absl::InvalidArgumentError("nerf stage: sparsity_weight must be ≥ 0");
  if (absl::Status s = ValidateNerfFieldConfig(c.field); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("nerf stage: ", s.message()));
  return absl::OkStatus();
}

struct NerfStage::Impl {
  NerfStageConfig config;
  DiffusionPrior& prior;
  std::unique_ptr<Guidance> guidance;
  NerfField field;
  std::unique_ptr<Adam> adam;
  at::Generator generator;
  int64_t step = 0;

  Impl(const NerfStageConfig& c, DiffusionPrior& p, uint64_t seed, const at::Device& device)
      : config(c), prior(p), field(c.field, seed, device), generator(at::make_generator<at::CPUGeneratorImpl>(seed)) {
    NerfField::ParameterGroups groups = field.Parameters();
    adam = std::make_unique<Adam>(std::vector<AdamGroup>{{groups.encoding, c.lr_encoding}, {groups.mlp, c.lr_mlp}});
  }

};

NerfStage::NerfStage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NerfStage::~NerfStage() = default;
int64_t NerfStage::step() const { return impl_->step; }
bool NerfStage::done() const { return impl_->step >= impl_->config.steps; }
const NerfField& NerfStage::field() const { return impl_->field; }
const Guidance& NerfStage::guidance() const { return *impl_->guidance; }

absl::StatusOr<std::unique_ptr<NerfStage>> NerfStage::Create(DiffusionPrior& prior, RewardModel* reward,
                                                             const std::string& prompt, const NerfStageConfig& config,
                                                             uint64_t seed, const at::Device& device) {
  if (absl::Status s = ValidateNerfStageConfig(config); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(config, prior, seed, device);
  absl::StatusOr<std::unique_ptr<Guidance>> g = Guidance::Create(prior, reward, prompt, config.guidance);
  if (!g.ok()) return g.status();
  impl->guidance = *std::move(g);
  return std::unique_ptr<NerfStage>(new NerfStage(std::move(impl)));
}

absl::StatusOr<StageStepReport> NerfStage::Step() {
  Impl& s = *impl_;
  const auto start = std::chrono::steady_clock::now();
  StageStepReport report;
  report.step = s.step;
  CameraBatch cams = tinyworld::SampleWorldCameras(s.config.views, s.generator, s.field.device());
  at::Tensor opacity;
  at::Tensor images = RenderField(s.field, cams, s.config.render_size, s.config.samples_per_ray, true, &s.generator,
                                  &opacity);
  at::Tensor loss = s.guidance->Loss(ResizeRenders(images, s.prior.image_size()), cams, s.step, s.generator, &report.guidance);
  if (s.config.sparsity_weight > 0) loss = loss + s.config.sparsity_weight * opacity.mean();
  loss.backward();  // gradients start empty: every step ends with ZeroGrad
  if (absl::Status st = FinishStep(loss, s.field.Parameters().All(), report.guidance, *s.adam, "nerf stage", s.step, &report.loss); !st.ok()) return st;
  ++s.step;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

at::Tensor NerfStage::Render(const CameraBatch& cameras, int64_t size) const {
  c10::NoGradGuard no_grad;
  return RenderField(impl_->field, cameras, size, impl_->config.samples_per_ray, false, nullptr, nullptr);
}

std::map<std::string, at::Tensor> NerfStage::State() const {
  std::map<std::string, at::Tensor> state = WithPrefix(impl_->field.StateDict(), "field.");
  for (auto& [k, v] : state) v = v.cpu();
  PutTrainingState(*impl_->adam, *impl_->guidance, impl_->generator, impl_->step, &state);
  return state;
}

absl::Status NerfStage::LoadState(const std::map<std::string, at::Tensor>& state) {
  Impl& s = *impl_;
  if (absl::Status st = LoadTrainingState(state, "nerf stage", *s.adam, *s.guidance, s.generator, &s.step); !st.ok())
    return st;
  return s.field.LoadStateDict(Unprefixed(state, "field."));
}

}  // namespace psd3d
