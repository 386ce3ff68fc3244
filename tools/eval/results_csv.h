// The evaluation's results on disk: one CSV row per finished run in out/runs-<shard>.csv. Each process
// appends to its own file and flushes after every run, so a killed or paused evaluation loses at most
// the run in progress, shards running in parallel never write the same file, and a restart finds
// everything already done by reading every runs-*.csv of the folder. Columns are found by the header's
// names, so files written before a column was added still read (the missing value reads as absent).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psd3d::eval {

inline constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();
inline bool Present(double v) { return !std::isnan(v); }

// One row: what was run, under which configuration, and what the judge said about its GLB.
struct RunResult {
  std::string method;   // GuidanceMethodName
  std::string prompt;
  std::string subject;  // tinyworld::SubjectName, e.g. "red torus"
  bool held_out = false;
  uint64_t seed = 0;
  // The configuration, so that one folder never silently mixes evaluations.
  std::string quality;
  double steps_scale = 1;
  std::string settings;  // the --set knobs, space-separated ("" for none; also in files without the column)
  std::string device;
  int64_t steps = 0;  // optimization steps of the run (all stages)

  bool ok = false;
  std::string error;  // why the run failed (ok = false)

  // The judge's report on the exported GLB (8 judge cameras, shared yaw); absent (NaN) for failed runs.
  double reward = kAbsent;       // the training reward ("reward"), mean over views
  double reward_eval = kAbsent;  // the held-back reward ("reward_eval")
  bool shape_correct = false;    // the object's shape (argmax of mean IoU over views) is the prompt's
  double shape_accuracy = kAbsent;  // share of views whose best shape is the prompt's
  double expected_iou = kAbsent;    // mean IoU of the prompt's shape
  std::string shape;                // the judged shape
  bool color_correct = false;       // mean ΔE under the palette threshold
  double color_accuracy = kAbsent;  // share of views whose color is right
  double delta_e = kAbsent;         // mean ΔE76 to the prompt color's reference
  std::string nearest_color;
  double floater_share = kAbsent;   // surface area outside the largest component
  int64_t faces = 0;                // of the exported mesh

  double wall_s = kAbsent;  // optimization + export (not the judge)
  std::string glb;          // the GLB's path relative to the out folder ("" when not kept)

  std::string split() const { return held_out ? "held_out" : "seen"; }
};

// The header line and one row (each ending in '\n'). Text fields are quoted when they need it;
// newlines inside them become spaces so that every row is one line.
std::string CsvHeader();
std::string CsvRow(const RunResult& r);

// The rows of one CSV file's text (`source` names it in messages). A malformed row (wrong field count,
// unreadable number) is skipped with a line in `warnings`, since a process killed mid-write can leave a
// torn last line; a file whose header lacks the identity columns is INVALID_ARGUMENT.
absl::StatusOr<std::vector<RunResult>> ParseResultsCsv(absl::string_view text, const std::string& source,
                                                       std::vector<std::string>* warnings);

// The results file of a shard: "runs-<i>of<n>.csv" ("runs-0of1.csv" unsharded).
std::string ResultsFileName(int64_t shard_index, int64_t shard_count);

// Every runs-*.csv in `dir`, in file-name order; an absent folder has none.
absl::StatusOr<std::vector<RunResult>> ReadResults(const std::string& dir, std::vector<std::string>* warnings);

// Appends rows to one results file, writing the header into a new or empty file and completing a torn
// last line first; a file with an older version's columns is first rewritten under the current header.
// Every Append is flushed to the OS before it returns.
class ResultsWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ResultsWriter>> Open(const std::string& path);
  ~ResultsWriter();
  absl::Status Append(const RunResult& r);

 private:
  ResultsWriter(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  std::string path_;
  std::FILE* file_;
};

}  // namespace psd3d::eval
