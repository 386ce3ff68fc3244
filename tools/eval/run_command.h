// `psd3d-eval` (run): this shard's runs that no results file of the out folder holds yet, one after the
// other, each appended to the shard's CSV as soon as it ends, with one progress line per run. A time
// budget pauses the evaluation between runs (exit code 3); running the same command again resumes it.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "tools/eval/eval_run.h"
#include "tools/eval/run_list.h"

namespace psd3d::eval {

inline constexpr int kExitDone = 0;
inline constexpr int kExitFailed = 1;   // bad flags, unreadable pack or results (no run failure counts)
inline constexpr int kExitResume = 3;   // the time budget ran out with runs left: rerun to go on

struct RunCommandOptions {
  std::string pack_dir;
  at::Device device = at::kCPU;
  EvalSettings settings;  // quality, steps_scale, out_dir, keep_glb
  std::string methods;    // --methods
  std::string prompts;    // --prompts
  int64_t seeds = 3;
  std::string shard;      // --shard
  double time_budget_s = 0;  // 0: none
};

// Messages go to stderr, progress lines to stdout. Returns one of the exit codes above.
int RunEvaluation(const RunCommandOptions& options);

}  // namespace psd3d::eval
