// psd3d-tinyworld eval-reward: measures the pack's two reward models on fresh preference pairs drawn
// from a seed stream that training never uses (docs/tiny-world.md acceptance: pairwise accuracy ≥ 95%,
// the two models agree on ≥ 90% of pairs, the gradient pulls a wrong color toward the prompt's):
// - per degradation kind, clean-vs-degraded pairs: pairwise accuracy of "reward" and "reward_eval",
//   and how often the two order a pair the same way;
// - graded pairs (same kind, milder wins): the same three numbers;
// - the gradient check (GradientColorCheck) for every one of the 48 subjects in a wrong color.
// Prints a table, writes <out>/reward-eval.json with every number and <out>/reward-pairs.png, a grid of
// example pairs (per kind: winner, loser, …).
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "tools/tinyworld/command.h"
#include "tools/tinyworld/plot.h"
#include "worker/formats/png.h"
#include "worker/tinyworld/tiny_reward.h"

ABSL_FLAG(int64_t, reward_eval_per_kind, 500, "eval-reward: fresh clean-vs-degraded pairs per degradation kind");
ABSL_FLAG(int64_t, reward_eval_graded, 1000, "eval-reward: fresh graded pairs (same kind, milder wins)");
ABSL_FLAG(int, reward_check_steps, 20, "eval-reward: gradient-ascent steps of the color check");
ABSL_FLAG(double, reward_check_step_size, 0.01, "eval-reward: per-step size of the color check (sRGB, pixel RMS)");

namespace psd3d::tinyworld {
namespace {

// Pair stream of evaluation (train-reward uses 1–3): never a training pair, whatever the seeds.
constexpr uint64_t kEvalStream = 4;
constexpr int64_t kBatch = 250;
constexpr int kGridPairs = 4;  // example pairs per kind in the PNG

struct Counts {
  int64_t pairs = 0, right[2] = {0, 0}, agree = 0;
  void Add(const at::Tensor& m0, const at::Tensor& m1) {
    pairs += m0.size(0);
    right[0] += m0.gt(0).sum().item<int64_t>();
    if (m1.defined()) {
      right[1] += m1.gt(0).sum().item<int64_t>();
      agree += m0.gt(0).eq(m1.gt(0)).sum().item<int64_t>();
    }
  }
  void Add(const Counts& o) {
    pairs += o.pairs, right[0] += o.right[0], right[1] += o.right[1], agree += o.agree;
  }
  double Rate(int64_t n) const { return pairs > 0 ? static_cast<double>(n) / pairs : 0; }
  JsonValue Json(bool two) const {
    JsonValue j = JsonValue::Object();
    j.Set("pairs", JsonValue::Int(pairs));
    j.Set("reward", JsonValue::Double(Rate(right[0])));
    if (two) {
      j.Set("reward_eval", JsonValue::Double(Rate(right[1])));
      j.Set("agreement", JsonValue::Double(Rate(agree)));
    }
    return j;
  }
  void Print(const std::string& label, bool two) const {
    std::printf("%-16s %6lld  %7.4f  %11s  %9s\n", label.c_str(), static_cast<long long>(pairs), Rate(right[0]),
                two ? absl::StrFormat("%.4f", Rate(right[1])).c_str() : "-",
                two ? absl::StrFormat("%.4f", Rate(agree)).c_str() : "-");
  }
};

// Scores `count` fresh pairs of `options` with both models in batches; `examples` gets the first batch.
Counts ScorePairs(const PairOptions& options, int64_t count, uint64_t stream_index, const TinyReward& reward,
                  const TinyReward* reward_eval, PreferencePairs* examples) {
  Counts c;
  for (int64_t done = 0, b = 0; done < count; ++b) {
    const int64_t n = std::min(kBatch, count - done);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        PairStreamSeed(absl::GetFlag(FLAGS_seed), kEvalStream, stream_index * 100000 + b));
    PreferencePairs pairs = MakePreferencePairs(n, options, gen, reward.device());
    c.Add(PairMargins(reward, pairs), reward_eval ? PairMargins(*reward_eval, pairs) : at::Tensor());
    if (b == 0 && examples != nullptr) *examples = std::move(pairs);
    done += n;
  }
  return c;
}

struct CheckSummary {
  int subjects = 0, moved = 0;
  double delta_e_before = 0, delta_e_after = 0, score_before = 0, score_after = 0;
  JsonValue cases = JsonValue::Array();  // per subject: prompt, start color, ΔE before and after
  std::vector<std::string> failed;       // "red cube (from blue)"
  JsonValue Json() const {
    JsonValue j = JsonValue::Object();
    j.Set("subjects", JsonValue::Int(subjects));
    j.Set("moved_toward_prompt_color", JsonValue::Int(moved));
    j.Set("mean_delta_e_before", JsonValue::Double(delta_e_before));
    j.Set("mean_delta_e_after", JsonValue::Double(delta_e_after));
    j.Set("mean_score_before", JsonValue::Double(score_before));
    j.Set("mean_score_after", JsonValue::Double(score_after));
    j.Set("cases", cases);
    return j;
  }
};

// GradientColorCheck on all 48 subjects; subject i starts in palette color (color + 1 + i mod 7) mod 8.
absl::StatusOr<CheckSummary> CheckAllSubjects(TinyReward& reward) {
  GradientColorCheckOptions options;
  options.steps = absl::GetFlag(FLAGS_reward_check_steps);
  options.step_size = absl::GetFlag(FLAGS_reward_check_step_size);
  CheckSummary s;
  for (const Subject& subject : AllSubjects()) {
    const int i = SubjectIndex(subject);
    const Color wrong = static_cast<Color>((static_cast<int>(subject.color) + 1 + i % 7) % kNumColors);
    absl::StatusOr<GradientColorCheckResult> r = GradientColorCheck(reward, subject, wrong, options);
    if (!r.ok()) return r.status();
    ++s.subjects;
    s.moved += r->MovedTowardPrompt();
    if (!r->MovedTowardPrompt()) s.failed.push_back(absl::StrCat(SubjectName(subject), " (from ", ColorName(wrong), ")"));
    JsonValue c = JsonValue::Object();
    c.Set("prompt", JsonValue::String(MakePrompt(subject)));
    c.Set("start_color", JsonValue::String(std::string(ColorName(wrong))));
    c.Set("delta_e_before", JsonValue::Double(r->delta_e_before));
    c.Set("delta_e_after", JsonValue::Double(r->delta_e_after));
    s.cases.Push(std::move(c));
    s.delta_e_before += r->delta_e_before / kNumColors / kNumShapes;
    s.delta_e_after += r->delta_e_after / kNumColors / kNumShapes;
    s.score_before += r->score_before / kNumColors / kNumShapes;
    s.score_after += r->score_after / kNumColors / kNumShapes;
  }
  return s;
}

// Rows: kinds; columns: winner, loser, winner, loser, …; a label column on the left.
absl::Status WritePairGrid(const std::string& path, const std::vector<PreferencePairs>& examples) {
  constexpr int64_t kScale = 2, kLabel = 110, kSide = 64 * kScale;
  std::vector<at::Tensor> rows;
  for (const PreferencePairs& p : examples) {
    const int64_t n = std::min<int64_t>(kGridPairs, p.size());
    at::Tensor both = at::stack({p.winners.narrow(0, 0, n), p.losers.narrow(0, 0, n)}, 1).flatten(0, 1);
    rows.push_back(both.cpu());
  }
  at::Tensor images = at::cat(rows);  // [kinds·2n,3,64,64]
  images = at::upsample_nearest2d(images, std::vector<int64_t>{kSide, kSide});
  at::Tensor grid = ImageGrid(images.permute({0, 2, 3, 1}), 2 * kGridPairs);
  grid = (grid.clamp(0, 1) * 255).round().to(at::kByte);
  at::Tensor canvas = at::full({grid.size(0), grid.size(1) + kLabel, 3}, 255, at::kByte);
  canvas.narrow(1, kLabel, grid.size(1)).copy_(grid);
  for (size_t r = 0; r < examples.size(); ++r) {
    DrawText(canvas, 6, static_cast<int64_t>(r) * kSide + kSide / 2 - 7, std::string(DegradationName(examples[r].kinds[0])),
             /*scale=*/2, {0, 0, 0});
  }
  return WritePng(path, canvas.contiguous());
}

int EvalReward() {
  const std::string pack = absl::GetFlag(FLAGS_pack), out = absl::GetFlag(FLAGS_out);
  const at::Device device = FlagDevice();
  absl::StatusOr<std::unique_ptr<TinyReward>> reward = TinyReward::Load(pack, "reward", device);
  if (!reward.ok()) {
    std::fprintf(stderr, "eval-reward: %s\n", std::string(reward.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<TinyReward>> reward_eval = TinyReward::Load(pack, "reward_eval", device);
  if (!reward_eval.ok())
    std::fprintf(stderr, "eval-reward: no second model, reporting 'reward' alone: %s\n",
                 std::string(reward_eval.status().message()).c_str());
  const bool two = reward_eval.ok();
  const TinyReward* second = two ? reward_eval->get() : nullptr;

  const int64_t per_kind = std::max<int64_t>(1, absl::GetFlag(FLAGS_reward_eval_per_kind));
  JsonValue by_kind = JsonValue::Object();
  Counts clean, all;
  std::vector<PreferencePairs> examples;
  std::printf("%-16s %6s  %7s  %11s  %9s\n", "pairs", "count", "reward", "reward_eval", "agreement");
  for (Degradation kind : AllDegradations()) {
    PairOptions options;
    options.kinds = {kind};
    options.graded_fraction = 0;
    examples.emplace_back();
    Counts c = ScorePairs(options, per_kind, static_cast<uint64_t>(kind), **reward, second, &examples.back());
    c.Print(std::string(DegradationName(kind)), two);
    by_kind.Set(std::string(DegradationName(kind)), c.Json(two));
    clean.Add(c);
  }
  clean.Print("clean vs degr.", two);
  PairOptions graded_options;
  graded_options.graded_fraction = 1;
  const Counts graded =
      ScorePairs(graded_options, std::max<int64_t>(1, absl::GetFlag(FLAGS_reward_eval_graded)), 1000, **reward, second, nullptr);
  graded.Print("graded", two);
  all.Add(clean);
  all.Add(graded);
  all.Print("all pairs", two);

  JsonValue checks = JsonValue::Object();
  for (TinyReward* model : {reward->get(), two ? reward_eval->get() : nullptr}) {
    if (model == nullptr) continue;
    absl::StatusOr<CheckSummary> s = CheckAllSubjects(*model);
    if (!s.ok()) {
      std::fprintf(stderr, "eval-reward: gradient check: %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    const std::string name = model == reward->get() ? "reward" : "reward_eval";
    std::printf("gradient check %-11s: wrong-color renders of %d subjects moved toward the prompt's color in %d; "
                "mean ΔE %.1f → %.1f, mean score %.2f → %.2f\n",
                name.c_str(), s->subjects, s->moved, s->delta_e_before, s->delta_e_after, s->score_before, s->score_after);
    if (!s->failed.empty()) std::printf("  not moved toward: %s\n", absl::StrJoin(s->failed, ", ").c_str());
    checks.Set(name, s->Json());
  }

  JsonValue j = JsonValue::Object();
  j.Set("pack", JsonValue::String(pack));
  j.Set("seed", JsonValue::Uint(absl::GetFlag(FLAGS_seed)));
  j.Set("seed_stream", JsonValue::Int(kEvalStream));
  j.Set("device", JsonValue::String(device.str()));
  j.Set("by_kind", std::move(by_kind));
  j.Set("clean_vs_degraded", clean.Json(two));
  j.Set("graded", graded.Json(two));
  j.Set("all", all.Json(two));
  j.Set("gradient_check", std::move(checks));
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (absl::Status s = WriteFileAtomically(out + "/reward-eval.json", j.Dump()); !s.ok()) {
    std::fprintf(stderr, "eval-reward: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (absl::Status s = WritePairGrid(out + "/reward-pairs.png", examples); !s.ok()) {
    std::fprintf(stderr, "eval-reward: pair grid: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("wrote %s/reward-eval.json and %s/reward-pairs.png\n", out.c_str(), out.c_str());
  return 0;
}

PSD3D_TINYWORLD_COMMAND("eval-reward",
                        "pairwise accuracy and agreement of the pack's reward models on fresh pairs, and the gradient "
                        "color check",
                        EvalReward);

}  // namespace
}  // namespace psd3d::tinyworld
