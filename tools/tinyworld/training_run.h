// The scaffolding every psd3d-tinyworld trainer shares, so train-prior and train-reward keep only their
// own data, loss and optimizer:
// - a TrainingLog of named columns that becomes the loss CSV and its plot;
// - resumable chunks: a checkpoint folder of torch archives (written via temp + rename) plus
//   state.json {run identity, step, wall_seconds, log}, written last so that it marks the archives
//   complete; a resume refuses a checkpoint whose identity differs from the command's;
// - a ChunkClock for --time_budget (checked after a step, so every chunk makes progress; the chunk
//   then ends with kExitResume) and for periodic checkpoints;
// - the warm-up + cosine learning-rate schedule both trainers use.
// Everything here is deterministic bookkeeping: a resumed run computes exactly what a straight one does.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/tinyworld/plot.h"
#include "worker/formats/json_lite.h"

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace psd3d::tinyworld {

// The curve of a run: one row per logged window, a step and one value per named column.
class TrainingLog {
 public:
  struct Row {
    int64_t step;
    std::vector<double> values;  // one per column
  };

  // `columns` name the values after "step" (the CSV header), e.g. {"eps_mse", "grad_norm"}.
  explicit TrainingLog(std::vector<std::string> columns);

  void Add(int64_t step, std::vector<double> values);  // TORCH_CHECKs one value per column
  const std::vector<Row>& rows() const { return rows_; }
  bool empty() const { return rows_.empty(); }
  double Last(size_t column) const { return rows_.back().values.at(column); }

  // (step, map(value)) of one column, labelled for WriteLossPlot; `map` defaults to the value itself.
  PlotSeries Series(std::string label, size_t column, const std::function<double(double)>& map = nullptr) const;
  // "step,<columns>\n" then "%d,%.6f,…\n" per row.
  std::string Csv() const;
  // [[step, v…], …] for state.json, and back: rows of another width are skipped, missing numbers read
  // as NaN.
  JsonValue ToJson() const;
  void ReadJson(const JsonValue& json);

 private:
  std::vector<std::string> columns_;
  std::vector<Row> rows_;
};

// Creates `dir` and its parents; INTERNAL naming the folder when that fails.
absl::Status EnsureDirectory(const std::string& dir);

// Writes <dir>/<name>.csv and, when the log has rows, <dir>/<name>.png: `series` on a log-y plot.
absl::Status WriteTrainingLog(const TrainingLog& log, const std::string& dir, const std::string& name,
                              const std::vector<PlotSeries>& series, const std::string& title,
                              const std::string& y_label);

// How far a run got: what state.json holds besides the run's identity.
struct TrainState {
  explicit TrainState(std::vector<std::string> log_columns) : log(std::move(log_columns)) {}
  int64_t step = 0;
  double wall_seconds = 0;  // training time over all chunks
  TrainingLog log;
};

// OK when `stored` (state.json's "run", or null when absent) equals `identity`; FAILED_PRECONDITION
// naming both and the checkpoint folder `dir` otherwise.
absl::Status CheckIdentity(const JsonValue* stored, const JsonValue& identity, const std::string& dir);

// <dir>/state.json: {"run": identity, "step", "wall_seconds", "log"}, written atomically.
absl::Status WriteState(const std::string& dir, const JsonValue& identity, const TrainState& state);
// Reads <dir>/state.json into `state` after CheckIdentity; false (state untouched) when there is none.
absl::StatusOr<bool> ReadState(const std::string& dir, const JsonValue& identity, TrainState* state);

// Torch archives of a checkpoint. SaveArchive fills an archive with `write` and stores it as
// `path`.tmp renamed to `path` (a crash never leaves a half-written `path`); LoadArchive loads `path`
// onto `device` and hands it to `read`, INTERNAL with the path when the file or its contents are bad.
using ArchiveWriter = std::function<void(torch::serialize::OutputArchive&)>;
using ArchiveReader = std::function<void(torch::serialize::InputArchive&)>;
absl::Status SaveArchive(const std::string& path, const ArchiveWriter& write);
absl::Status LoadArchive(const std::string& path, const at::Device& device, const ArchiveReader& read);

// A whole checkpoint: the archives <dir>/<name> (e.g. "model.pt"), then state.json.
absl::Status SaveCheckpoint(const std::string& dir, const JsonValue& identity, const TrainState& state,
                            const std::vector<std::pair<std::string, ArchiveWriter>>& archives);
// Restores `state` and the archives when <dir> holds a checkpoint of `identity`; false if it holds none.
absl::StatusOr<bool> LoadCheckpoint(const std::string& dir, const JsonValue& identity, const at::Device& device,
                                    TrainState* state,
                                    const std::vector<std::pair<std::string, ArchiveReader>>& archives);

// Linear warm-up to `peak` over `warmup` steps (≥ 1), then cosine decay to floor_fraction·peak at
// `steps` (flat after).
double WarmupCosineLr(int64_t step, int64_t warmup, int64_t steps, double peak, double floor_fraction);

// The clock of one training chunk: total training time over chunks, the chunk's time budget, periodic
// checkpoints and the steps/s of a logging window.
class ChunkClock {
 public:
  // `wall_before`: training seconds of earlier chunks (TrainState::wall_seconds).
  ChunkClock(double wall_before, absl::Duration budget, absl::Duration checkpoint_every);

  double WallSeconds() const;         // wall_before + this chunk so far
  bool BudgetSpent() const;           // this chunk has run longer than its budget
  bool CheckpointDue() const;         // longer than checkpoint_every since the last MarkCheckpoint
  void MarkCheckpoint() { last_checkpoint_ = absl::Now(); }
  // Steps/s of the `steps` since the last call (or the chunk's start); starts the next window.
  double EndWindow(int64_t steps);

 private:
  double wall_before_;
  absl::Duration budget_, checkpoint_every_;
  absl::Time start_, last_checkpoint_, window_start_;
};

// "<label>: time budget reached at step N; run the same command to resume" on stdout; kExitResume.
int StopForBudget(const std::string& label, int64_t step);
// "<label>: <what>" on stderr.
void PrintFailure(const std::string& label, const std::string& what);

// TF32 and cuDNN autotuning on CUDA (training tolerates TF32; nothing changes on the CPU).
void EnableFastCudaMath(const at::Device& device);
// Rounds every tensor to F16 and back in place: what a pack ships, so metrics see the shipped weights.
void RoundToHalf(std::vector<at::Tensor> params);
// Sets "wall_seconds", "steps_per_second" and "device" of a manifest's training object.
void SetTimingJson(JsonValue& training, const TrainState& state, const at::Device& device);

}  // namespace psd3d::tinyworld
