// psd3d-eval: the method comparison of docs/eval.md. Flags are read here only; the work lives in
// run_command (the runs), summary and grid (the report).
#include <cstdio>
#include <string>
#include <vector>


#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/eval/run_command.h"
#include "tools/eval/summary.h"
#include "worker/pipeline/cpu_threads.h"
#include "worker/tinyworld/pack.h"

ABSL_FLAG(std::string, pack_dir, "", "Model pack folder (default: $PSD3D_PACK_DIR or models/tiny of the source tree)");
ABSL_FLAG(std::string, device, "", "cpu or cuda (default: cuda when available)");
ABSL_FLAG(std::string, quality, "draft", "Preset every run uses: draft, standard or high");
ABSL_FLAG(double, steps_scale, 1.0, "Multiplies each optimized stage's steps of the preset (rounded, at least 1)");
ABSL_FLAG(std::string, methods, "all",
          "Comma list of sds, dreamdpo, reward_gradient, psd_fixed_negative, psd; 'all' for the five");
ABSL_FLAG(std::string, prompts, "all",
          "all (48 subjects), seen (42), held_out (6): one prompt per subject, 'a {color} {shape}'; or a "
          "';'-separated list of tiny-world prompts");
ABSL_FLAG(int64_t, seeds, 3, "Seeds per (method, prompt): 1..N");
ABSL_FLAG(std::string, shard, "0/1", "i/n: this process makes the runs whose index % n == i (run n processes)");
ABSL_FLAG(std::string, out, "eval-out", "Folder for runs-*.csv, glb/, summary.md and grid.png");
ABSL_FLAG(double, time_budget, 0,
          "Seconds; when used up, the current run finishes and the process exits 3 (rerun to resume). 0: none");
ABSL_FLAG(bool, glb, true, "Keep each run's GLB under <out>/glb/ (the picture grid needs them)");
ABSL_FLAG(std::vector<std::string>, set, {},
          "Knobs on top of the preset for every run, comma-separated, e.g. --set=all.lambda_pref=0.5,coarse.tau=2 "
          "(worker/pipeline/presets.h SetConfigValue); recorded per run, one folder holds one setting");
ABSL_FLAG(int64_t, grid_cell, 128, "summarize: pixels per cell of grid.png");

namespace {

constexpr char kUsage[] =
    "psd3d-eval [run] [flags] | psd3d-eval summarize --out=DIR\n"
    "\n"
    "run (the default): optimizes every (method, prompt, seed) of this --shard with the same preset, step\n"
    "budget and seeds, exports each GLB, judges it with the tiny world's judge (8 cameras) and both reward\n"
    "models, and appends one row per run to <out>/runs-<i>of<n>.csv. Runs already in any <out>/runs-*.csv\n"
    "are skipped, so rerunning resumes and shards can run as parallel processes on one folder:\n"
    "  for i in 0 1 2 3 4 5 6 7; do psd3d-eval --shard=$i/8 --out=eval-out & done; wait\n"
    "Exit codes: 0 done, 1 error, 3 paused by --time_budget.\n"
    "\n"
    "summarize: reads <out>/runs-*.csv, writes <out>/summary.md (per method, seen vs held-out: reward,\n"
    "reward_eval, shape and color accuracy, ΔE, floaters, wall time; paired deltas vs SDS) and\n"
    "<out>/grid.png (prompts × methods). See docs/eval.md.";

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "psd3d-eval: %s\n", std::string(s.message()).c_str());
  return psd3d::eval::kExitFailed;
}

int Run() {
  psd3d::eval::RunCommandOptions o;
  o.pack_dir = absl::GetFlag(FLAGS_pack_dir);
  if (o.pack_dir.empty()) o.pack_dir = psd3d::tinyworld::DefaultPackDir();
  absl::StatusOr<at::Device> device = psd3d::eval::ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return Fail(device.status());
  o.device = *device;
  absl::StatusOr<psd3d::Quality> quality = psd3d::ParseQuality(absl::GetFlag(FLAGS_quality));
  if (!quality.ok()) return Fail(quality.status());
  o.settings.quality = *quality;
  o.settings.steps_scale = absl::GetFlag(FLAGS_steps_scale);
  o.settings.settings = absl::GetFlag(FLAGS_set);
  o.settings.out_dir = absl::GetFlag(FLAGS_out);
  o.settings.keep_glb = absl::GetFlag(FLAGS_glb);
  o.methods = absl::GetFlag(FLAGS_methods);
  o.prompts = absl::GetFlag(FLAGS_prompts);
  o.seeds = absl::GetFlag(FLAGS_seeds);
  o.shard = absl::GetFlag(FLAGS_shard);
  o.time_budget_s = absl::GetFlag(FLAGS_time_budget);
  if (o.time_budget_s < 0) return Fail(absl::InvalidArgumentError("--time_budget must be ≥ 0"));
  return psd3d::eval::RunEvaluation(o);
}

int Summarize() {
  const int64_t cell = absl::GetFlag(FLAGS_grid_cell);
  if (cell < 8 || cell > 1024) return Fail(absl::InvalidArgumentError("--grid_cell must be in [8, 1024]"));
  const std::string out = absl::GetFlag(FLAGS_out);
  if (absl::Status s = psd3d::eval::WriteSummary(out, cell); !s.ok()) return Fail(s);
  std::printf("wrote %s/summary.md and %s/grid.png\n", out.c_str(), out.c_str());
  return psd3d::eval::kExitDone;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // --help lists this tool's flags (absl's default looks for a file named after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "tools/eval/"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string command = args.size() > 1 ? args[1] : "run";
  if (args.size() > 2 || (command != "run" && command != "summarize")) {
    std::fprintf(stderr, "psd3d-eval: unknown command '%s'\n\n%s\n", args.size() > 2 ? args[2] : command.c_str(), kUsage);
    return 2;
  }
  if (command == "summarize") return Summarize();
  psd3d::UseAllCpuCores();
  return Run();
}
