// `psd3d-eval summarize`: every runs-*.csv of an out folder becomes out/summary.md (per method, seen
// and held-out prompts apart: reward, reward_eval, judge accuracies, ΔE, floaters, wall time as
// mean ± standard error, and each method's paired difference from SDS on the same (prompt, seed)) and
// out/grid.png (grid.h).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/eval/grid.h"
#include "tools/eval/results_csv.h"

namespace psd3d::eval {

// One row per run key (method, prompt, seed): when a run appears more than once (e.g. overlapping
// shards), a finished row wins over a failed one, otherwise the first is kept.
std::vector<RunResult> Deduplicate(const std::vector<RunResult>& results);

// The markdown report of deduplicated results. `grid_notes` (cells the grid could not draw) and
// `warnings` (rows skipped while reading) are listed at the end.
std::string SummaryMarkdown(const std::vector<RunResult>& results, const GridLayout& grid,
                            const std::vector<std::string>& grid_notes, const std::vector<std::string>& warnings);

// Reads out_dir's results and writes summary.md and grid.png there (cells of `grid_cell` px).
// FAILED_PRECONDITION when the folder holds no results.
absl::Status WriteSummary(const std::string& out_dir, int64_t grid_cell = 128);

}  // namespace psd3d::eval
