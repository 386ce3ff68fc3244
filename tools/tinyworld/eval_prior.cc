// psd3d-tinyworld eval-prior: the prior's acceptance check (docs/tiny-world.md: right shape ≥ 90% and
// right color ≥ 90% on seen prompts, held-out reported apart). Samples each of the 48 prompts
// ("a {color} {shape}") from the 8 judge cameras with DDIM and classifier-free guidance, judges every
// image on its own (JudgeMode::kPerImage: the samples are independent, each with its own yaw), and
// prints a table of seen / held-out / all: shape accuracy, color accuracy, mean ΔE, mean IoU of the
// asked shape (and the pack's reward scores when it has reward models). Writes <out>/eval-prior.json
// (the table, run settings and one judge report per subject) and <out>/eval-prior.png (48 rows, one
// per subject in AllSubjects order, × 8 views).
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tools/tinyworld/command.h"
#include "tools/tinyworld/pack_loading.h"
#include "worker/formats/png.h"
#include "worker/models/ddim_sampler.h"
#include "worker/tinyworld/judge.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

ABSL_FLAG(int64_t, eval_steps, 50, "eval-prior: DDIM steps per sample");
ABSL_FLAG(double, eval_guidance, 5.0, "eval-prior: classifier-free guidance scale");
ABSL_FLAG(int64_t, eval_batch_prompts, 12, "eval-prior: prompts sampled together (× 8 views, × 2 for guidance)");
ABSL_FLAG(int64_t, eval_yaw_steps, 12, "eval-prior: judge yaws for cube and pyramid, in [0°, 90°)");
ABSL_FLAG(bool, eval_rewards, true, "eval-prior: add the pack's reward scores when the pack has reward models");

namespace psd3d::tinyworld {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "eval-prior: %s\n", status.ToString().c_str());
  return 1;
}

// Sums over the images of a group of prompts.
struct Tally {
  int64_t prompts = 0, images = 0;
  double shape_right = 0, color_right = 0, delta_e = 0, iou = 0;
  double reward = 0, eval_reward = 0;
  bool has_reward = false, has_eval_reward = false;

  void Add(const JudgeReport& r) {
    const double v = static_cast<double>(r.views.size());
    ++prompts;
    images += static_cast<int64_t>(r.views.size());
    shape_right += r.shape_accuracy * v;
    color_right += r.color_accuracy * v;
    delta_e += r.mean_delta_e * v;
    iou += r.mean_expected_iou * v;
    if (r.reward) {
      reward += *r.reward * v;
      has_reward = true;
    }
    if (r.eval_reward) {
      eval_reward += *r.eval_reward * v;
      has_eval_reward = true;
    }
  }
  double Mean(double sum) const { return images > 0 ? sum / images : 0; }

  JsonValue Json() const {
    JsonValue j = JsonValue::Object();
    j.Set("prompts", JsonValue::Int(prompts));
    j.Set("images", JsonValue::Int(images));
    j.Set("shape_accuracy", JsonValue::Double(Mean(shape_right)));
    j.Set("color_accuracy", JsonValue::Double(Mean(color_right)));
    j.Set("mean_delta_e", JsonValue::Double(Mean(delta_e)));
    j.Set("mean_expected_iou", JsonValue::Double(Mean(iou)));
    if (has_reward) j.Set("mean_reward", JsonValue::Double(Mean(reward)));
    if (has_eval_reward) j.Set("mean_eval_reward", JsonValue::Double(Mean(eval_reward)));
    return j;
  }
  void Print(const char* label) const {
    std::printf("%-9s %7lld %6lld  %6.1f%%  %6.1f%%  %6.2f  %5.3f", label, static_cast<long long>(prompts),
                static_cast<long long>(images), 100 * Mean(shape_right), 100 * Mean(color_right), Mean(delta_e),
                Mean(iou));
    if (has_reward) std::printf("  %7.3f", Mean(reward));
    if (has_eval_reward) std::printf("  %7.3f", Mean(eval_reward));
    std::printf("\n");
  }
};

std::unique_ptr<TinyReward> MaybeReward(const std::string& key, const at::Device& device) {
  if (!absl::GetFlag(FLAGS_eval_rewards)) return nullptr;
  return LoadOptionalReward(absl::GetFlag(FLAGS_pack), key, device, "eval-prior");
}

// Samples of `subjects` from the 8 judge cameras each: [8·n,3,S,S] on the prior's device, subject-major.
absl::StatusOr<at::Tensor> Sample(TinyPrior& prior, const std::vector<Subject>& subjects, const CameraBatch& views,
                                  const DdimOptions& ddim, at::Generator& generator) {
  const int64_t n = static_cast<int64_t>(subjects.size()), v = views.size();
  std::vector<at::Tensor> contexts;
  for (const Subject& s : subjects) {
    absl::StatusOr<at::Tensor> c = prior.EncodePrompt(MakePrompt(s, 0));
    if (!c.ok()) return c.status();
    contexts.push_back(c->expand({v, c->size(1), c->size(2)}));
  }
  const CameraBatch cameras = WorldCameras(views.elevation.repeat({n}), views.azimuth.repeat({n}));
  return SampleDdim(prior, at::cat(contexts), cameras, ddim, generator).clamp(0, 1);
}

int EvalPrior() {
  const std::string pack = absl::GetFlag(FLAGS_pack), out = absl::GetFlag(FLAGS_out);
  const at::Device device = FlagDevice();
  absl::StatusOr<std::unique_ptr<TinyPrior>> prior = TinyPrior::Load(pack, device);
  if (!prior.ok()) return Fail(prior.status());
  DdimOptions ddim;
  ddim.steps = absl::GetFlag(FLAGS_eval_steps);
  ddim.guidance_scale = absl::GetFlag(FLAGS_eval_guidance);
  if (ddim.steps < 1 || ddim.steps > (*prior)->schedule().num_steps()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--eval_steps must be in [1, ", (*prior)->schedule().num_steps(), "]")));
  }
  const std::unique_ptr<TinyReward> reward = MaybeReward("reward", device),
                                    eval_reward = MaybeReward("reward_eval", device);
  JudgeOptions options;
  options.yaw_steps = std::max<int64_t>(1, absl::GetFlag(FLAGS_eval_yaw_steps));
  options.render.size = (*prior)->image_size();
  options.device = device;
  options.reward = reward.get();
  options.eval_reward = eval_reward.get();
  const CameraBatch views = JudgeCameras(device);
  Judge judge(views, options);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(absl::GetFlag(FLAGS_seed));

  const std::vector<Subject> subjects = AllSubjects();
  const int64_t batch = std::max<int64_t>(1, absl::GetFlag(FLAGS_eval_batch_prompts));
  std::vector<at::Tensor> all_images;
  JsonValue reports = JsonValue::Array();
  Tally seen, held_out, all;
  double sample_seconds = 0, judge_seconds = 0;
  for (size_t first = 0; first < subjects.size(); first += batch) {
    const std::vector<Subject> part(subjects.begin() + first,
                                    subjects.begin() + std::min(subjects.size(), first + static_cast<size_t>(batch)));
    absl::Time start = absl::Now();
    absl::StatusOr<at::Tensor> images = Sample(**prior, part, views, ddim, generator);
    if (!images.ok()) return Fail(images.status());
    sample_seconds += absl::ToDoubleSeconds(absl::Now() - start);
    start = absl::Now();
    for (size_t k = 0; k < part.size(); ++k) {
      const at::Tensor mine = images->narrow(0, static_cast<int64_t>(k) * views.size(), views.size());
      absl::StatusOr<JudgeReport> r = judge.JudgeImages(mine, part[k], JudgeMode::kPerImage);
      if (!r.ok()) return Fail(r.status());
      (IsHeldOut(part[k]) ? held_out : seen).Add(*r);
      all.Add(*r);
      JsonValue j = ReportToJson(*r);
      j.Set("prompt", JsonValue::String(MakePrompt(part[k], 0)));
      reports.Push(std::move(j));
    }
    judge_seconds += absl::ToDoubleSeconds(absl::Now() - start);
    all_images.push_back(images->cpu());
    std::printf("eval-prior: %zu/%zu prompts (sampling %.1f s, judging %.1f s)\n", first + part.size(), subjects.size(),
                sample_seconds, judge_seconds);
    std::fflush(stdout);
  }

  const PaletteThresholdInfo& threshold = PaletteThreshold();
  std::printf("\n%s: %zu prompts × %lld views, %lld DDIM steps, guidance %g, seed %llu, %s\n", (*prior)->name().c_str(),
              subjects.size(), static_cast<long long>(views.size()), static_cast<long long>(ddim.steps),
              ddim.guidance_scale, static_cast<unsigned long long>(absl::GetFlag(FLAGS_seed)), device.str().c_str());
  // "ΔE" is 3 bytes wide for printf and 2 on screen, hence %7s over a 6-wide column.
  std::printf("%-9s %7s %6s  %7s  %7s  %7s  %5s%s%s\n", "group", "prompts", "images", "shape", "color", "ΔE", "IoU",
              reward ? "   reward" : "", eval_reward ? "  r_eval" : "");
  seen.Print("seen");
  held_out.Print("held-out");
  all.Print("all");
  std::printf("right color: ΔE < %.2f (half the ΔE between the %s and %s references); IoU of the asked shape\n",
              threshold.delta_e, std::string(ColorName(threshold.a)).c_str(),
              std::string(ColorName(threshold.b)).c_str());

  JsonValue json = JsonValue::Object();
  json.Set("prior", JsonValue::String((*prior)->name()));
  json.Set("pack", JsonValue::String(pack));
  json.Set("device", JsonValue::String(device.str()));
  json.Set("seed", JsonValue::Uint(absl::GetFlag(FLAGS_seed)));
  json.Set("steps", JsonValue::Int(ddim.steps));
  json.Set("guidance", JsonValue::Double(ddim.guidance_scale));
  json.Set("views", JsonValue::Int(views.size()));
  json.Set("yaw_steps", JsonValue::Int(options.yaw_steps));
  json.Set("sample_seconds", JsonValue::Double(sample_seconds));
  json.Set("judge_seconds", JsonValue::Double(judge_seconds));
  json.Set("delta_e_threshold", JsonValue::Double(threshold.delta_e));
  json.Set("mask_threshold", JsonValue::Double(MaskThreshold()));
  JsonValue& groups = json.Set("groups", JsonValue::Object());
  groups.Set("seen", seen.Json());
  groups.Set("held_out", held_out.Json());
  groups.Set("all", all.Json());
  json.Set("subjects", std::move(reports));

  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Fail(absl::InternalError(absl::StrCat("cannot create ", out, ": ", ec.message())));
  if (absl::Status s = WriteFileAtomically(out + "/eval-prior.json", json.Dump()); !s.ok()) return Fail(s);
  const at::Tensor grid = ImageGrid(at::cat(all_images).permute({0, 2, 3, 1}), views.size());
  if (absl::Status s = WritePng(out + "/eval-prior.png", grid); !s.ok()) return Fail(s);
  std::printf("wrote %s/eval-prior.json and %s/eval-prior.png (rows: the 48 subjects, color-major; columns: views)\n",
              out.c_str(), out.c_str());
  return 0;
}

PSD3D_TINYWORLD_COMMAND("eval-prior", "sample the 48 prompts from the 8 judge views and judge them (seen vs held-out)",
                        EvalPrior);

}  // namespace
}  // namespace psd3d::tinyworld
