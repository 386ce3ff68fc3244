#include "worker/pipeline/pipeline.h"

#include <vector>

#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"
#include "worker/formats/glb.h"
#include "worker/formats/png.h"
#include "worker/pipeline/stage_common.h"
#include "worker/tinyworld/scene_render.h"

namespace psd3d {
namespace {

// Each stage draws from its own generator so a stage's trajectory does not depend on how many draws
// the stages before it made.
uint64_t StageSeed(uint64_t seed, PipelineStage stage) {
  return seed + 0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(stage) + 1);
}

absl::Status InStage(PipelineStage stage, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(PipelineStageName(stage), " stage: ", s.message()));
}

}  // namespace

absl::string_view PipelineStageName(PipelineStage stage) {
  switch (stage) {
    case PipelineStage::kCoarse: return "coarse";
    case PipelineStage::kGeometry: return "geometry";
    case PipelineStage::kTexture: return "texture";
    case PipelineStage::kExport: return "export";
  }
  return "unknown";
}

absl::Status ValidatePipelineConfig(const PipelineConfig& c) {
  if (absl::Status s = ValidateNerfStageConfig(c.coarse); !s.ok()) return s;
  if (!c.geometry.train_geometry) return absl::InvalidArgumentError("geometry stage: train_geometry must be true");
  if (c.texture.train_geometry) return absl::InvalidArgumentError("texture stage: train_geometry must be false");
  if (absl::Status s = ValidateMeshStageConfig(c.geometry); !s.ok()) return s;
  if (absl::Status s = ValidateMeshStageConfig(c.texture); !s.ok()) return s;
  return ValidateExportOptions(c.export_options);
}

struct Pipeline::Impl {
  DiffusionPrior& prior;
  RewardModel* reward;
  std::string prompt;
  PipelineConfig config;
  uint64_t seed;
  at::Device device;
  PipelineStage stage = PipelineStage::kCoarse;
  std::unique_ptr<NerfStage> coarse;
  std::unique_ptr<MeshStage> mesh;  // geometry or texture

  Impl(DiffusionPrior& p, RewardModel* r, std::string pr, PipelineConfig c, uint64_t s, at::Device d)
      : prior(p), reward(r), prompt(std::move(pr)), config(std::move(c)), seed(s), device(d) {}

  absl::Status StartCoarse() {
    absl::StatusOr<std::unique_ptr<NerfStage>> s =
        NerfStage::Create(prior, reward, prompt, config.coarse, StageSeed(seed, PipelineStage::kCoarse), device);
    if (!s.ok()) return InStage(PipelineStage::kCoarse, s.status());
    coarse = *std::move(s);
    return absl::OkStatus();
  }

  // The geometry stage from the coarse field (or from `field`, when resuming).
  absl::Status StartGeometry(const NerfField& field, const std::map<std::string, at::Tensor>* guidance_state) {
    absl::StatusOr<std::unique_ptr<MeshStage>> s =
        MeshStage::Create(prior, reward, prompt, config.geometry, field, StageSeed(seed, PipelineStage::kGeometry),
                          nullptr, guidance_state);
    if (!s.ok()) return InStage(PipelineStage::kGeometry, s.status());
    mesh = *std::move(s);
    stage = PipelineStage::kGeometry;
    return absl::OkStatus();
  }

  absl::Status StartTexture(const NerfField& field, const std::map<std::string, at::Tensor>& geometry,
                            const std::map<std::string, at::Tensor>* guidance_state) {
    absl::StatusOr<std::unique_ptr<MeshStage>> s =
        MeshStage::Create(prior, reward, prompt, config.texture, field, StageSeed(seed, PipelineStage::kTexture),
                          &geometry, guidance_state);
    if (!s.ok()) return InStage(PipelineStage::kTexture, s.status());
    mesh = *std::move(s);
    stage = PipelineStage::kTexture;
    return absl::OkStatus();
  }

  // After the current stage's last step: build the next one.
  absl::Status Advance() {
    if (stage == PipelineStage::kCoarse) {
      const std::map<std::string, at::Tensor> psi = coarse->guidance().State();
      absl::Status s = StartGeometry(coarse->field(), &psi);
      if (s.ok()) coarse.reset();
      return s;
    }
    if (stage == PipelineStage::kGeometry) {
      const std::map<std::string, at::Tensor> psi = mesh->guidance().State();
      return StartTexture(mesh->color_field(), mesh->dmtet().State(), &psi);
    }
    stage = PipelineStage::kExport;
    return absl::OkStatus();
  }

  int64_t Steps(PipelineStage s) const {
    switch (s) {
      case PipelineStage::kCoarse: return config.coarse.steps;
      case PipelineStage::kGeometry: return config.geometry.steps;
      case PipelineStage::kTexture: return config.texture.steps;
      case PipelineStage::kExport: return 0;
    }
    return 0;
  }
};

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;
PipelineStage Pipeline::stage() const { return impl_->stage; }
const PipelineConfig& Pipeline::config() const { return impl_->config; }
int64_t Pipeline::stage_steps(PipelineStage stage) const { return impl_->Steps(stage); }
int64_t Pipeline::total_steps() const {
  return impl_->config.coarse.steps + impl_->config.geometry.steps + impl_->config.texture.steps;
}

int64_t Pipeline::stage_step() const {
  switch (impl_->stage) {
    case PipelineStage::kCoarse: return impl_->coarse->step();
    case PipelineStage::kGeometry:
    case PipelineStage::kTexture: return impl_->mesh->step();
    case PipelineStage::kExport: return 0;
  }
  return 0;
}

int64_t Pipeline::steps_done() const {
  int64_t done = 0;
  for (PipelineStage s : {PipelineStage::kCoarse, PipelineStage::kGeometry, PipelineStage::kTexture}) {
    if (s < impl_->stage) done += impl_->Steps(s);
  }
  return done + stage_step();
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(DiffusionPrior& prior, RewardModel* reward,
                                                           const std::string& prompt, const PipelineConfig& config,
                                                           uint64_t seed, const at::Device& device) {
  if (absl::Status s = ValidatePipelineConfig(config); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(prior, reward, prompt, config, seed, device);
  if (absl::Status s = impl->StartCoarse(); !s.ok()) return s;
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

absl::StatusOr<PipelineStepReport> Pipeline::Step() {
  Impl& s = *impl_;
  if (s.stage == PipelineStage::kExport) return absl::FailedPreconditionError("pipeline: optimization is finished");
  PipelineStepReport report;
  report.stage = s.stage;
  report.stage_steps = s.Steps(s.stage);
  absl::StatusOr<StageStepReport> r = s.stage == PipelineStage::kCoarse ? s.coarse->Step() : s.mesh->Step();
  if (!r.ok()) return r.status();  // the stage's message names it and the step
  report.detail = *r;
  report.step = r->step + 1;
  const bool finished = s.stage == PipelineStage::kCoarse ? s.coarse->done() : s.mesh->done();
  if (finished) {
    if (absl::Status st = s.Advance(); !st.ok()) return st;
  }
  report.progress = static_cast<double>(steps_done()) / static_cast<double>(total_steps());
  return report;
}

at::Tensor Pipeline::Render(const CameraBatch& cameras, int64_t size) const {
  if (impl_->stage == PipelineStage::kCoarse) return impl_->coarse->Render(cameras, size);
  return impl_->mesh->Render(cameras, size);
}

absl::StatusOr<std::string> Pipeline::PreviewPng(int64_t size) const {
  c10::NoGradGuard no_grad;
  const at::Device dev = impl_->device;
  const double deg = M_PI / 180.0;
  const at::Tensor azimuth = at::tensor({45.0, 135.0, 225.0, 315.0}, at::kFloat).mul(deg).to(dev);
  const at::Tensor elevation = at::full({4}, 20.0 * deg, at::TensorOptions(at::kFloat).device(dev));
  const at::Tensor views = Render(tinyworld::WorldCameras(elevation, azimuth), size);
  return EncodePng(ImageGrid(views.permute({0, 2, 3, 1}).contiguous(), 2));
}

absl::StatusOr<Mesh> Pipeline::ExportMesh() const {
  if (impl_->stage != PipelineStage::kExport)
    return absl::FailedPreconditionError("pipeline: export before the texture stage finished");
  absl::StatusOr<Mesh> m = ColorMesh(impl_->mesh->Surface(), impl_->mesh->color_field(), impl_->config.export_options);
  if (!m.ok()) return InStage(PipelineStage::kExport, m.status());
  return m;
}

absl::StatusOr<std::string> Pipeline::ExportGlb() const {
  absl::StatusOr<Mesh> m = ExportMesh();
  if (!m.ok()) return m.status();
  return EncodeGlb(*m);
}

std::map<std::string, at::Tensor> Pipeline::State() const {
  const Impl& s = *impl_;
  std::map<std::string, at::Tensor> state;
  if (s.stage == PipelineStage::kCoarse) {
    state = WithPrefix(s.coarse->State(), "coarse.");
  } else {
    // The texture stage (and export) keep the texture stage's state; the geometry stage its own.
    state = WithPrefix(s.mesh->State(), s.stage == PipelineStage::kGeometry ? "geometry." : "texture.");
  }
  state["pipeline.stage"] = at::tensor({static_cast<int64_t>(s.stage)}, at::kLong);
  // The later stages' generators are seeded from it when they start.
  state["pipeline.seed"] = at::tensor({static_cast<int64_t>(s.seed)}, at::kLong);
  return state;
}

absl::Status Pipeline::LoadState(const std::map<std::string, at::Tensor>& state) {
  Impl& s = *impl_;
  auto it = state.find("pipeline.stage");
  if (it == state.end() || it->second.numel() != 1) return absl::InvalidArgumentError("pipeline state: 'pipeline.stage' missing");
  const int64_t stage = it->second.item<int64_t>();
  if (stage < 0 || stage > static_cast<int64_t>(PipelineStage::kExport))
    return absl::InvalidArgumentError(absl::StrCat("pipeline state: unknown stage ", stage));
  auto seed = state.find("pipeline.seed");
  if (seed == state.end() || seed->second.numel() != 1) return absl::InvalidArgumentError("pipeline state: 'pipeline.seed' missing");
  s.seed = static_cast<uint64_t>(seed->second.item<int64_t>());
  if (stage == static_cast<int64_t>(PipelineStage::kCoarse)) {
    if (s.stage != PipelineStage::kCoarse || s.coarse == nullptr) {
      s.mesh.reset();
      s.stage = PipelineStage::kCoarse;
      if (absl::Status st = s.StartCoarse(); !st.ok()) return st;
    }
    return InStage(PipelineStage::kCoarse, s.coarse->LoadState(Unprefixed(state, "coarse.")));
  }
  // A mesh stage: rebuild it around a color field and surface taken from the state, then load it all.
  const bool geometry = stage == static_cast<int64_t>(PipelineStage::kGeometry);
  const std::string prefix = geometry ? "geometry." : "texture.";
  const std::map<std::string, at::Tensor> sub = Unprefixed(state, prefix);
  NerfField field(s.config.coarse.field, 0, s.device);
  std::map<std::string, at::Tensor> color = Unprefixed(sub, "color.");
  for (auto& [k, v] : color) v = v.to(s.device);
  if (absl::Status st = field.LoadStateDict(color); !st.ok())
    return absl::InvalidArgumentError(absl::StrCat("pipeline state: ", st.message()));
  absl::Status started = geometry ? s.StartGeometry(field, nullptr) : s.StartTexture(field, Unprefixed(sub, "dmtet."), nullptr);
  if (!started.ok()) return started;
  s.coarse.reset();
  const PipelineStage mesh_stage = geometry ? PipelineStage::kGeometry : PipelineStage::kTexture;
  if (absl::Status st = InStage(mesh_stage, s.mesh->LoadState(sub)); !st.ok()) return st;
  if (stage == static_cast<int64_t>(PipelineStage::kExport)) s.stage = PipelineStage::kExport;
  return absl::OkStatus();
}

}  // namespace psd3d
