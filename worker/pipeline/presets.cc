#include "worker/pipeline/presets.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace psd3d {
namespace {

// The guidance every stage shares; the t window narrows toward low noise as the stages refine.
// GPU presets take ψ's gradient from the ranking forward: the same update with one prior call a step,
// which cut PSD's step by 20–30% on the H100 (launch-bound); on the CPU (DRAFT) it costs FLOPs instead.
// (STANDARD or HIGH run on a CPU get the same update, only slower; set psi_from_ranking=0 there.)
GuidanceConfig StageGuidance(GuidanceMethod method, double t_max_start, double t_max_end, int64_t steps,
                             bool gpu_preset) {
  GuidanceConfig g;
  g.method = method;
  g.psi_from_ranking = gpu_preset;
  g.guidance_scale = 7.5;
  g.t_min = ScalarSchedule::Constant(0.02);
  g.t_max = ScalarSchedule::Linear(0, t_max_start, t_max_end, steps);
  g.t_feedback = 600;
  return g;
}

}  // namespace

absl::string_view QualityName(Quality q) {
  switch (q) {
    case Quality::kDraft: return "draft";
    case Quality::kStandard: return "standard";
    case Quality::kHigh: return "high";
  }
  return "unknown";
}

absl::StatusOr<Quality> ParseQuality(absl::string_view name) {
  for (Quality q : {Quality::kDraft, Quality::kStandard, Quality::kHigh})
    if (name == QualityName(q)) return q;
  return absl::InvalidArgumentError(absl::StrCat("unknown quality '", name, "' (draft, standard, high)"));
}

PipelineConfig PresetConfig(Quality quality, GuidanceMethod method) {
  PipelineConfig c;
  const bool draft = quality == Quality::kDraft;
  const int64_t scale = quality == Quality::kHigh ? 2 : 1;

  NerfStageConfig& n = c.coarse;
  n.steps = draft ? 240 : 600 * scale;
  n.views = draft ? 1 : 4 * scale;
  n.render_size = draft ? 32 : 64;
  n.samples_per_ray = draft ? 32 : 64;
  if (draft) {  // 4 levels, 16 → 54 cells: finer levels only add surface noise at 32² renders
    n.field.encoding.levels = 4;
    n.field.encoding.log2_table_size = 14;
    n.field.encoding.per_level_scale = 1.5;
  }
  // DRAFT's short coarse stage needs faster learning to grow the blob to the world's object size
  // (measured on the H100 with scripts/sweeps/draft-std.txt: 3× the rates gives a larger, boxier "red
  // cube"). 240 steps and 100 geometry steps give a cube with flat faces where 60 and 30 gave a round
  // blob (CPU, 2 cores, ~100 s for PSD: docs/results.md).
  n.lr_encoding = draft ? 3e-2 : 1e-2;
  n.lr_mlp = draft ? 3e-3 : 1e-3;
  n.sparsity_weight = 0.0;
  n.guidance = StageGuidance(method, 0.98, 0.5, n.steps, !draft);

  MeshStageConfig& g = c.geometry;
  g.train_geometry = true;
  g.steps = draft ? 100 : 300 * scale;
  g.views = draft ? 1 : 4 * scale;
  g.render_size = 64;
  g.supersample = draft ? 1 : 2;
  g.resolution = draft ? 24 : 64;
  // DRAFT grades its initial sdf in log density (DMTet::InitFromDensity): on 6 held-out and 6 seen
  // prompts, seed 1, CPU, both rewards rose by 1.6–2.2 and ΔE fell by 0.3–0.5 for SDS and PSD, shapes
  // unchanged (docs/results.md). STANDARD/HIGH keep the clamp until it is measured on the GPU.
  g.init_softness = draft ? 2.0 : 0.0;
  g.lr_sdf = 1e-2;
  g.lr_deformation = 1e-2;
  g.lr_encoding = 1e-2;
  g.lr_mlp = 1e-3;
  g.normal_consistency_weight = 0.1;
  g.laplacian_weight = 0.0;
  g.guidance = StageGuidance(method, 0.5, 0.3, g.steps, !draft);

  MeshStageConfig& t = c.texture;
  t = g;
  t.train_geometry = false;
  t.steps = draft ? 20 : 200 * scale;
  t.supersample = draft ? 1 : 2;
  t.guidance = StageGuidance(method, 0.4, 0.2, t.steps, !draft);

  c.export_options.texture_size = draft ? 256 : 1024;
  return c;
}

absl::Status ApplyStageOverride(PipelineStage stage, const StageOverride& o, PipelineConfig* config) {
  PipelineConfig copy = *config;  // changed only when the result validates
  PipelineConfig* c = &copy;
  const std::string where = absl::StrCat(PipelineStageName(stage), " stage override: ");
  if (stage == PipelineStage::kExport) {
    if (o.steps || o.batch_views) return absl::InvalidArgumentError(where + "only render_resolution (the atlas size) applies");
    if (o.render_resolution) c->export_options.texture_size = *o.render_resolution;
    if (absl::Status s = ValidateExportOptions(c->export_options); !s.ok()) return s;
    *config = copy;
    return absl::OkStatus();
  }
  int64_t* steps = nullptr;
  int64_t* size = nullptr;
  int64_t* views = nullptr;
  GuidanceConfig* guidance = nullptr;
  switch (stage) {
    case PipelineStage::kCoarse:
      steps = &c->coarse.steps, size = &c->coarse.render_size, views = &c->coarse.views, guidance = &c->coarse.guidance;
      break;
    case PipelineStage::kGeometry:
      steps = &c->geometry.steps, size = &c->geometry.render_size, views = &c->geometry.views,
      guidance = &c->geometry.guidance;
      break;
    default:
      steps = &c->texture.steps, size = &c->texture.render_size, views = &c->texture.views,
      guidance = &c->texture.guidance;
  }
  if (o.steps) {
    if (*o.steps < 1) return absl::InvalidArgumentError(absl::StrCat(where, "steps must be ≥ 1, got ", *o.steps));
    // The t window's annealing follows the stage's new length.
    guidance->t_max = ScalarSchedule::Linear(0, guidance->t_max.At(0), guidance->t_max.At(*steps), *o.steps);
    *steps = *o.steps;
  }
  if (o.render_resolution) *size = *o.render_resolution;
  if (o.batch_views) *views = *o.batch_views;
  absl::Status s = ValidatePipelineConfig(*c);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(where, s.message()));
  *config = copy;
  return absl::OkStatus();
}

namespace {

absl::Status SetGuidance(absl::string_view field, absl::string_view value, double v, bool numeric, int64_t steps,
                         GuidanceConfig* g, bool* known) {
  *known = true;
  if (field == "t_min" || field == "t_max") {
    ScalarSchedule* target = field == "t_min" ? &g->t_min : &g->t_max;
    std::vector<absl::string_view> parts = absl::StrSplit(value, ':');
    double a = 0, b = 0;
    if (parts.size() == 2 && absl::SimpleAtod(parts[0], &a) && absl::SimpleAtod(parts[1], &b)) {
      *target = ScalarSchedule::Linear(0, a, b, steps);
      return absl::OkStatus();
    }
    if (!numeric) return absl::InvalidArgumentError(absl::StrCat("'", value, "' is neither a number nor start:end"));
    *target = ScalarSchedule::Constant(v);
    return absl::OkStatus();
  }
  if (field == "pref_scale") {
    absl::StatusOr<PreferenceScale> scale = ParsePreferenceScale(value);
    if (!scale.ok()) return scale.status();
    g->pref_scale = *scale;
    return absl::OkStatus();
  }
  if (!numeric) return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not a number"));
  if (field == "guidance_scale") g->guidance_scale = v;
  else if (field == "lambda_pref") g->lambda_pref = v;
  else if (field == "tau") g->tau = v;
  else if (field == "pref_gate") g->pref_gate = v;
  else if (field == "psi_lr") g->psi_lr = v;
  else if (field == "psi_every") g->psi_every = static_cast<int64_t>(v);
  else if (field == "psi_warmup") g->psi_warmup = static_cast<int64_t>(v);
  else if (field == "t_feedback") g->t_feedback = static_cast<int64_t>(v);
  else if (field == "psi_from_ranking") g->psi_from_ranking = v != 0;
  else if (field == "per_view_winner") g->per_view_winner = v != 0;
  else if (field == "loser_uses_cfg") g->loser_uses_cfg = v != 0;
  else if (field == "pref_t_max") g->pref_t_max = v;
  else if (field == "cuda_graphs") g->cuda_graphs = v != 0;
  else if (field == "dpo_beta") g->dpo_beta = v;
  else if (field == "reward_weight") g->reward_weight = v;
  else if (field == "grad_clamp") g->grad_clamp = v;
  else *known = false;
  return absl::OkStatus();
}

// One stage's field; `known` says whether the name exists for that stage.
absl::Status SetStageValue(PipelineStage stage, absl::string_view field, absl::string_view value, PipelineConfig* c,
                           bool* known) {
  double v = 0;
  const bool numeric = absl::SimpleAtod(value, &v);
  const int64_t n = static_cast<int64_t>(v);
  *known = true;
  if (field == "steps") {  // through the override, so the t window's annealing follows the new length
    if (!numeric) return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not a number"));
    StageOverride o;
    o.steps = n;
    return ApplyStageOverride(stage, o, c);
  }
  if (stage == PipelineStage::kCoarse) {
    NerfStageConfig& s = c->coarse;
    if (field == "samples_per_ray") s.samples_per_ray = n;
    else if (field == "sparsity_weight") s.sparsity_weight = v;
    else if (field == "blob_scale") s.field.blob_scale = v;
    else if (field == "blob_std") s.field.blob_std = v;
    else if (field == "views") s.views = n;
    else if (field == "render_size") s.render_size = n;
    else if (field == "lr_encoding") s.lr_encoding = v;
    else if (field == "lr_mlp") s.lr_mlp = v;
    else if (field == "grid_levels") s.field.encoding.levels = static_cast<int>(n);
    else if (field == "grid_base_resolution") s.field.encoding.base_resolution = static_cast<int>(n);
    else if (field == "grid_per_level_scale") s.field.encoding.per_level_scale = v;
    else if (field == "grid_log2_table_size") s.field.encoding.log2_table_size = static_cast<int>(n);
    else return SetGuidance(field, value, v, numeric, s.steps, &s.guidance, known);
  } else {
    MeshStageConfig& s = stage == PipelineStage::kGeometry ? c->geometry : c->texture;
    if (field == "views") s.views = n;
    else if (field == "render_size") s.render_size = n;
    else if (field == "supersample") s.supersample = n;
    else if (field == "resolution") s.resolution = n;
    else if (field == "init_threshold") s.init_threshold = v;
    else if (field == "init_smoothing") s.init_smoothing = n;
    else if (field == "init_softness") s.init_softness = v;
    else if (field == "lr_encoding") s.lr_encoding = v;
    else if (field == "lr_mlp") s.lr_mlp = v;
    else if (field == "lr_sdf") s.lr_sdf = v;
    else if (field == "lr_deformation") s.lr_deformation = v;
    else if (field == "normal_consistency_weight") s.normal_consistency_weight = v;
    else if (field == "laplacian_weight") s.laplacian_weight = v;
    else return SetGuidance(field, value, v, numeric, s.steps, &s.guidance, known);
  }
  if (!numeric) return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not a number"));
  return absl::OkStatus();
}

}  // namespace

absl::Status SetConfigValue(absl::string_view setting, PipelineConfig* config) {
  PipelineConfig copy = *config;  // changed only when the result validates
  PipelineConfig* c = &copy;
  std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(setting, absl::MaxSplits('=', 1));
  std::pair<absl::string_view, absl::string_view> key = absl::StrSplit(kv.first, absl::MaxSplits('.', 1));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("setting '", setting, "': ", why));
  };
  if (key.second.empty() || kv.second.empty()) return bad("expected <stage>.<field>=<value>");
  if (key.first == "export") {
    int64_t size = 0;
    if (key.second != "texture_size") return bad("export has only texture_size");
    if (!absl::SimpleAtoi(kv.second, &size)) return bad("not an integer");
    c->export_options.texture_size = size;
  } else {
    std::vector<PipelineStage> stages;
    if (key.first == "coarse" || key.first == "all") stages.push_back(PipelineStage::kCoarse);
    if (key.first == "geometry" || key.first == "all") stages.push_back(PipelineStage::kGeometry);
    if (key.first == "texture" || key.first == "all") stages.push_back(PipelineStage::kTexture);
    if (stages.empty()) return bad("the stage must be coarse, geometry, texture, all or export");
    for (PipelineStage stage : stages) {
      bool known = false;
      absl::Status s = SetStageValue(stage, key.second, kv.second, c, &known);
      if (!known) return bad(absl::StrCat("unknown field for the ", PipelineStageName(stage), " stage"));
      if (!s.ok()) return bad(s.message());
    }
  }
  if (absl::Status s = ValidatePipelineConfig(*c); !s.ok()) return bad(s.message());
  *config = copy;
  return absl::OkStatus();
}

}  // namespace psd3d
