#include "tools/eval/run_command.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/eval/results_csv.h"

namespace psd3d::eval {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "psd3d-eval: %s\n", std::string(status.message()).c_str());
  return kExitFailed;
}

// The runs of this shard and every configuration they use, checked before anything is loaded.
absl::StatusOr<std::vector<EvalRun>> ShardRuns(const RunCommandOptions& o, Shard* shard) {
  absl::StatusOr<std::vector<GuidanceMethod>> methods = ParseMethods(o.methods);
  if (!methods.ok()) return methods.status();
  absl::StatusOr<std::vector<std::string>> prompts = ParsePrompts(o.prompts);
  if (!prompts.ok()) return prompts.status();
  absl::StatusOr<Shard> s = ParseShard(o.shard);
  if (!s.ok()) return s.status();
  *shard = *s;
  for (GuidanceMethod m : *methods) {
    absl::StatusOr<PipelineConfig> config = EvalConfig(o.settings.quality, m, o.settings.steps_scale, o.settings.settings);
    if (!config.ok()) return config.status();
  }
  absl::StatusOr<std::vector<EvalRun>> all = MakeRuns(*methods, *prompts, o.seeds);
  if (!all.ok()) return all.status();
  std::vector<EvalRun> mine;
  for (EvalRun& r : *all)
    if (shard->Contains(r)) mine.push_back(std::move(r));
  return mine;
}

// Keys of the runs the out folder already holds. INVALID_ARGUMENT when they were made under another
// quality, step scale or settings: one folder, one experiment.
absl::StatusOr<std::set<std::string>> DoneRuns(const EvalSettings& settings) {
  std::vector<std::string> warnings;
  absl::StatusOr<std::vector<RunResult>> rows = ReadResults(settings.out_dir, &warnings);
  if (!rows.ok()) return rows.status();
  for (const std::string& w : warnings) std::fprintf(stderr, "psd3d-eval: %s\n", w.c_str());
  const std::string quality(QualityName(settings.quality));
  const std::string knobs = JoinSettings(settings.settings);
  std::set<std::string> done;
  for (const RunResult& r : *rows) {
    if (r.settings != knobs) {
      return absl::InvalidArgumentError(absl::StrFormat("%s holds runs with --set='%s', not '%s'; use another --out",
                                                        settings.out_dir, r.settings, knobs));
    }
    if (r.quality != quality || std::abs(r.steps_scale - settings.steps_scale) > 1e-9 * settings.steps_scale) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s holds runs at --quality=%s --steps_scale=%g, not %s / %g; use another --out", settings.out_dir,
          r.quality, r.steps_scale, quality, settings.steps_scale));
    }
    done.insert(RunKey(r.method, r.prompt, r.seed));
  }
  return done;
}

std::string Mark(bool right) { return right ? "right" : "wrong"; }

// The one line a finished run prints.
std::string ProgressLine(int64_t k, int64_t n, const RunResult& r) {
  std::string head = absl::StrFormat("[%d/%d] %s '%s' seed %d: ", k, n, r.method, r.prompt, r.seed);
  if (!r.ok) return absl::StrCat(head, "FAILED: ", r.error);
  return absl::StrCat(head, absl::StrFormat("reward %.3f, eval %.3f, shape %s (%s), color %s (%s, ΔE %.1f), "
                                            "floaters %.1f%%, %.1f s",
                                            r.reward, r.reward_eval, r.shape, Mark(r.shape_correct),
                                            r.nearest_color, Mark(r.color_correct), r.delta_e,
                                            100 * (Present(r.floater_share) ? r.floater_share : 0.0), r.wall_s));
}

}  // namespace

int RunEvaluation(const RunCommandOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  Shard shard;
  absl::StatusOr<std::vector<EvalRun>> runs = ShardRuns(o, &shard);
  if (!runs.ok()) return Fail(runs.status());
  std::error_code ec;
  std::filesystem::create_directories(o.settings.out_dir, ec);
  if (ec) return Fail(absl::InternalError(absl::StrCat("creating ", o.settings.out_dir, ": ", ec.message())));
  absl::StatusOr<std::set<std::string>> done = DoneRuns(o.settings);
  if (!done.ok()) return Fail(done.status());

  std::vector<EvalRun> pending;
  for (const EvalRun& r : *runs)
    if (!done->count(RunKey(r))) pending.push_back(r);
  std::fprintf(stderr, "psd3d-eval: shard %d/%d: %zu runs, %zu done before, %zu to go (%s, %s, steps ×%g)\n",
               static_cast<int>(shard.index), static_cast<int>(shard.count), runs->size(),
               runs->size() - pending.size(), pending.size(), o.device.str().c_str(),
               std::string(QualityName(o.settings.quality)).c_str(), o.settings.steps_scale);
  if (pending.empty()) return kExitDone;

  absl::StatusOr<EvalModels> models = LoadEvalModels(o.pack_dir, o.device);
  if (!models.ok()) return Fail(models.status());
  const std::string csv = (std::filesystem::path(o.settings.out_dir) / ResultsFileName(shard.index, shard.count)).string();
  absl::StatusOr<std::unique_ptr<ResultsWriter>> writer = ResultsWriter::Open(csv);
  if (!writer.ok()) return Fail(writer.status());

  for (size_t i = 0; i < pending.size(); ++i) {
    const RunResult result = RunOne(*models, pending[i], o.settings);
    if (absl::Status s = (*writer)->Append(result); !s.ok()) return Fail(s);
    std::printf("%s\n", ProgressLine(static_cast<int64_t>(i + 1), static_cast<int64_t>(pending.size()), result).c_str());
    std::fflush(stdout);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.time_budget_s > 0 && elapsed >= o.time_budget_s && i + 1 < pending.size()) {
      std::fprintf(stderr, "psd3d-eval: time budget used after %zu runs, %zu left: run the same command to resume\n",
                   i + 1, pending.size() - i - 1);
      return kExitResume;
    }
  }
  return kExitDone;
}

}  // namespace psd3d::eval
