#include "tools/eval/eval_run.h"

#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>

#include <torch/cuda.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "worker/formats/glb_reader.h"
#include "worker/pipeline/pipeline.h"
#include "worker/tinyworld/judge.h"
#include "worker/tinyworld/world.h"

namespace psd3d::eval {
namespace {

absl::Status WithContext(const absl::Status& s, absl::string_view what) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// The optimization and export of one run: the GLB's bytes and the run's steps.
struct Artefact {
  std::string glb;
  int64_t steps = 0;
};

absl::StatusOr<Artefact> Optimize(EvalModels& models, const EvalRun& run, const PipelineConfig& config) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Pipeline::Create(*models.prior, models.reward.get(), run.prompt, config, run.seed, models.device);
  if (!pipeline.ok()) return pipeline.status();
  Pipeline& p = **pipeline;
  while (p.stage() != PipelineStage::kExport) {
    absl::StatusOr<PipelineStepReport> step = p.Step();
    if (!step.ok()) return step.status();
  }
  absl::StatusOr<std::string> glb = p.ExportGlb();
  if (!glb.ok()) return glb.status();
  return Artefact{*std::move(glb), p.total_steps()};
}

// The judge's report on the mesh read back from the GLB, with both rewards.
absl::StatusOr<tinyworld::JudgeReport> JudgeExport(EvalModels& models, const Mesh& mesh,
                                                   const tinyworld::Subject& subject) {
  tinyworld::JudgeOptions options;
  options.device = models.device;
  options.reward = models.reward.get();
  options.eval_reward = models.reward_eval.get();
  absl::StatusOr<tinyworld::JudgeReport> report = tinyworld::JudgeMesh(mesh, subject, options);
  if (!report.ok()) return WithContext(report.status(), "judge");
  return report;
}

void Record(const tinyworld::JudgeReport& j, RunResult* r) {
  r->reward = j.reward.value_or(kAbsent);
  r->reward_eval = j.eval_reward.value_or(kAbsent);
  r->shape_correct = j.shape_correct;
  r->shape_accuracy = j.shape_accuracy;
  r->expected_iou = j.mean_expected_iou;
  r->shape = std::string(tinyworld::ShapeName(j.shape));
  r->color_correct = j.color_correct;
  r->color_accuracy = j.color_accuracy;
  r->delta_e = j.mean_delta_e;
  r->nearest_color = std::string(tinyworld::ColorName(j.nearest_color));
  r->floater_share = j.floater_share.value_or(kAbsent);
}

// The run proper; `result` already carries the run's identity and configuration.
absl::Status Execute(EvalModels& models, const EvalRun& run, const EvalSettings& settings, RunResult* result) {
  absl::StatusOr<tinyworld::Subject> subject = tinyworld::ParsePrompt(run.prompt);
  if (!subject.ok()) return subject.status();
  result->subject = tinyworld::SubjectName(*subject);
  absl::StatusOr<PipelineConfig> config = EvalConfig(settings.quality, run.method, settings.steps_scale, settings.settings);
  if (!config.ok()) return config.status();

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Artefact> artefact = Optimize(models, run, *config);
  if (!artefact.ok()) return artefact.status();
  // ExportGlb ends in a copy to the host, so the device's work is done by now.
  result->wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result->steps = artefact->steps;

  absl::StatusOr<Mesh> mesh = DecodeGlb(artefact->glb);
  if (!mesh.ok()) return WithContext(mesh.status(), "reading back the GLB");
  result->faces = mesh->num_faces();
  absl::StatusOr<tinyworld::JudgeReport> report = JudgeExport(models, *mesh, *subject);
  if (!report.ok()) return report.status();
  Record(*report, result);

  if (settings.keep_glb) {
    const std::string rel = GlbRelativePath(result->method, run.prompt, run.seed);
    const std::filesystem::path path = std::filesystem::path(settings.out_dir) / rel;
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return absl::InternalError(absl::StrCat("creating ", path.parent_path().string(), ": ", ec.message()));
    if (absl::Status s = WriteFileAtomically(path.string(), artefact->glb); !s.ok()) return s;
    result->glb = rel;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EvalModels> LoadEvalModels(const std::string& pack_dir, const at::Device& device) {
  EvalModels m;
  m.device = device;
  absl::StatusOr<std::unique_ptr<tinyworld::TinyPrior>> prior = tinyworld::TinyPrior::Load(pack_dir, device);
  if (!prior.ok()) return WithContext(prior.status(), "loading the prior");
  m.prior = *std::move(prior);
  for (auto [key, slot] : {std::pair{"reward", &m.reward}, std::pair{"reward_eval", &m.reward_eval}}) {
    absl::StatusOr<std::unique_ptr<tinyworld::TinyReward>> r = tinyworld::TinyReward::Load(pack_dir, key, device);
    if (!r.ok()) return WithContext(r.status(), absl::StrCat("loading the reward model '", key, "'"));
    *slot = *std::move(r);
  }
  return m;
}

absl::StatusOr<at::Device> ParseDevice(const std::string& name) {
  if (name.empty()) return torch::cuda::is_available() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  if (name == "cpu") return at::Device(at::kCPU);
  if (name == "cuda" || absl::StartsWith(name, "cuda:")) {
    if (!torch::cuda::is_available()) return absl::FailedPreconditionError("--device=cuda but CUDA is not available");
    return at::Device(name);
  }
  return absl::InvalidArgumentError(absl::StrCat("--device must be cpu or cuda, got '", name, "'"));
}

absl::StatusOr<PipelineConfig> EvalConfig(Quality quality, GuidanceMethod method, double steps_scale,
                                          const std::vector<std::string>& settings) {
  if (!(steps_scale > 0) || !std::isfinite(steps_scale)) {
    return absl::InvalidArgumentError(absl::StrCat("--steps_scale must be > 0, got ", steps_scale));
  }
  PipelineConfig config = PresetConfig(quality, method);
  for (PipelineStage stage : {PipelineStage::kCoarse, PipelineStage::kGeometry, PipelineStage::kTexture}) {
    if (steps_scale == 1) break;  // the preset as it is
    const int64_t preset = stage == PipelineStage::kCoarse     ? config.coarse.steps
                           : stage == PipelineStage::kGeometry ? config.geometry.steps
                                                               : config.texture.steps;
    StageOverride o;
    o.steps = std::max<int64_t>(1, std::llround(static_cast<double>(preset) * steps_scale));
    if (absl::Status s = ApplyStageOverride(stage, o, &config); !s.ok()) return s;
  }
  for (const std::string& setting : settings)
    if (absl::Status s = SetConfigValue(setting, &config); !s.ok()) return s;
  return config;
}

std::string JoinSettings(const std::vector<std::string>& settings) { return absl::StrJoin(settings, " "); }

std::string GlbRelativePath(absl::string_view method, absl::string_view prompt, uint64_t seed) {
  std::string slug;
  for (char c : prompt) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    slug += plain ? c : '_';
  }
  return absl::StrCat("glb/", method, "__", slug, "__s", seed, ".glb");
}

RunResult RunOne(EvalModels& models, const EvalRun& run, const EvalSettings& settings) {
  RunResult r;
  r.method = std::string(GuidanceMethodName(run.method));
  r.prompt = run.prompt;
  r.held_out = run.held_out;
  r.seed = run.seed;
  r.quality = std::string(QualityName(settings.quality));
  r.steps_scale = settings.steps_scale;
  r.settings = JoinSettings(settings.settings);
  r.device = models.device.str();
  absl::Status status;
  try {
    status = Execute(models, run, settings, &r);
  } catch (const c10::Error& e) {  // a TORCH_CHECK deep in the engine: this run's failure only
    status = absl::InternalError(absl::StrCat("exception: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("exception: ", e.what()));
  }
  r.ok = status.ok();
  if (!r.ok) r.error = status.ToString();
  return r;
}

}  // namespace psd3d::eval
