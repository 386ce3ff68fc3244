#include "tools/tinyworld/training_run.h"

#include <c10/core/GradMode.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tools/tinyworld/command.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::tinyworld {

// --- TrainingLog ---------------------------------------------------------------------------------

TrainingLog::TrainingLog(std::vector<std::string> columns) : columns_(std::move(columns)) {}

void TrainingLog::Add(int64_t step, std::vector<double> values) {
  TORCH_CHECK(values.size() == columns_.size(), "TrainingLog: ", columns_.size(), " values per row, got ",
              values.size());
  rows_.push_back({step, std::move(values)});
}

PlotSeries TrainingLog::Series(std::string label, size_t column, const std::function<double(double)>& map) const {
  PlotSeries series{std::move(label), {}};
  for (const Row& r : rows_) {
    const double v = r.values.at(column);
    series.second.emplace_back(static_cast<double>(r.step), map ? map(v) : v);
  }
  return series;
}

std::string TrainingLog::Csv() const {
  std::string csv = "step";
  for (const std::string& c : columns_) absl::StrAppend(&csv, ",", c);
  csv += "\n";
  for (const Row& r : rows_) {
    absl::StrAppendFormat(&csv, "%d", r.step);
    for (double v : r.values) absl::StrAppendFormat(&csv, ",%.6f", v);
    csv += "\n";
  }
  return csv;
}

JsonValue TrainingLog::ToJson() const {
  JsonValue log = JsonValue::Array();
  for (const Row& r : rows_) {
    JsonValue row = JsonValue::Array();
    row.Push(JsonValue::Int(r.step));
    for (double v : r.values) row.Push(JsonValue::Double(v));
    log.Push(std::move(row));
  }
  return log;
}

void TrainingLog::ReadJson(const JsonValue& json) {
  rows_.clear();
  if (!json.is_array()) return;
  for (const JsonValue& row : json.items()) {
    if (!row.is_array() || row.items().size() != columns_.size() + 1) continue;
    Row r{static_cast<int64_t>(row.items()[0].AsDouble().value_or(0)), {}};
    for (size_t i = 1; i < row.items().size(); ++i) r.values.push_back(row.items()[i].AsDouble().value_or(NAN));
    rows_.push_back(std::move(r));
  }
}

// --- files ---------------------------------------------------------------------------------------

absl::Status EnsureDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteTrainingLog(const TrainingLog& log, const std::string& dir, const std::string& name,
                              const std::vector<PlotSeries>& series, const std::string& title,
                              const std::string& y_label) {
  if (absl::Status s = EnsureDirectory(dir); !s.ok()) return s;
  const std::string base = dir + "/" + name;
  if (absl::Status s = WriteFileAtomically(base + ".csv", log.Csv()); !s.ok()) return s;
  if (log.empty()) return absl::OkStatus();
  return WriteLossPlot(base + ".png", series, title, "step", y_label, /*log_y=*/true);
}

// --- checkpoints ---------------------------------------------------------------------------------

absl::Status CheckIdentity(const JsonValue* stored, const JsonValue& identity, const std::string& dir) {
  const std::string expected = identity.Dump();
  if (stored != nullptr && stored->Dump() == expected) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("checkpoint ", dir, " belongs to another run (",
                                                    stored ? stored->Dump() : "?", " vs ", expected,
                                                    "); remove it or use another --checkpoint_dir"));
}

absl::Status WriteState(const std::string& dir, const JsonValue& identity, const TrainState& state) {
  JsonValue j = JsonValue::Object();
  j.Set("run", identity);
  j.Set("step", JsonValue::Int(state.step));
  j.Set("wall_seconds", JsonValue::Double(state.wall_seconds));
  j.Set("log", state.log.ToJson());
  return WriteFileAtomically(dir + "/state.json", j.Dump());
}

absl::StatusOr<bool> ReadState(const std::string& dir, const JsonValue& identity, TrainState* state) {
  absl::StatusOr<std::string> text = ReadFileToString(dir + "/state.json");
  if (absl::IsNotFound(text.status())) return false;
  if (!text.ok()) return text.status();
  absl::StatusOr<JsonValue> j = ParseJson(*text);
  if (!j.ok()) return j.status();
  if (absl::Status s = CheckIdentity(j->Find("run"), identity, dir); !s.ok()) return s;
  absl::StatusOr<int64_t> step = JsonInt(*j, "step");
  absl::StatusOr<double> wall = JsonDouble(*j, "wall_seconds");
  if (!step.ok()) return step.status();
  if (!wall.ok()) return wall.status();
  state->step = *step;
  state->wall_seconds = *wall;
  const JsonValue* log = j->Find("log");
  state->log.ReadJson(log != nullptr ? *log : JsonValue());
  return true;
}

absl::Status SaveArchive(const std::string& path, const ArchiveWriter& write) {
  torch::serialize::OutputArchive archive;
  write(archive);
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status LoadArchive(const std::string& path, const at::Device& device, const ArchiveReader& read) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, device);
    read(archive);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot load ", path, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status SaveCheckpoint(const std::string& dir, const JsonValue& identity, const TrainState& state,
                            const std::vector<std::pair<std::string, ArchiveWriter>>& archives) {
  if (absl::Status s = EnsureDirectory(dir); !s.ok()) return s;
  for (const auto& [name, write] : archives) {
    if (absl::Status s = SaveArchive(dir + "/" + name, write); !s.ok()) return s;
  }
  return WriteState(dir, identity, state);  // last: it marks the archives complete
}

absl::StatusOr<bool> LoadCheckpoint(const std::string& dir, const JsonValue& identity, const at::Device& device,
                                    TrainState* state,
                                    const std::vector<std::pair<std::string, ArchiveReader>>& archives) {
  absl::StatusOr<bool> found = ReadState(dir, identity, state);
  if (!found.ok() || !*found) return found;
  for (const auto& [name, read] : archives) {
    if (absl::Status s = LoadArchive(dir + "/" + name, device, read); !s.ok()) return s;
  }
  return true;
}

// --- schedule and clock --------------------------------------------------------------------------

double WarmupCosineLr(int64_t step, int64_t warmup, int64_t steps, double peak, double floor_fraction) {
  if (step < warmup) return peak * static_cast<double>(step + 1) / warmup;
  const double t = static_cast<double>(step - warmup) / std::max<int64_t>(1, steps - warmup);
  return peak * (floor_fraction + (1 - floor_fraction) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, t))));
}

ChunkClock::ChunkClock(double wall_before, absl::Duration budget, absl::Duration checkpoint_every)
    : wall_before_(wall_before), budget_(budget), checkpoint_every_(checkpoint_every) {
  start_ = last_checkpoint_ = window_start_ = absl::Now();
}

double ChunkClock::WallSeconds() const { return wall_before_ + absl::ToDoubleSeconds(absl::Now() - start_); }
bool ChunkClock::BudgetSpent() const { return absl::Now() - start_ > budget_; }
bool ChunkClock::CheckpointDue() const { return absl::Now() - last_checkpoint_ > checkpoint_every_; }

double ChunkClock::EndWindow(int64_t steps) {
  const absl::Time now = absl::Now();
  const double rate = static_cast<double>(steps) / std::max(1e-9, absl::ToDoubleSeconds(now - window_start_));
  window_start_ = now;
  return rate;
}

// --- small shared steps --------------------------------------------------------------------------

int StopForBudget(const std::string& label, int64_t step) {
  std::printf("%s: time budget reached at step %lld; run the same command to resume\n", label.c_str(),
              static_cast<long long>(step));
  return kExitResume;
}

void PrintFailure(const std::string& label, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", label.c_str(), what.c_str());
}

void EnableFastCudaMath(const at::Device& device) {
  if (!device.is_cuda()) return;
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
  at::globalContext().setBenchmarkCuDNN(true);
}

void RoundToHalf(std::vector<at::Tensor> params) {
  c10::NoGradGuard no_grad;
  for (at::Tensor& p : params) p.copy_(p.to(at::kHalf).to(at::kFloat));
}

void SetTimingJson(JsonValue& training, const TrainState& state, const at::Device& device) {
  training.Set("wall_seconds", JsonValue::Double(state.wall_seconds));
  training.Set("steps_per_second", JsonValue::Double(state.wall_seconds > 0 ? state.step / state.wall_seconds : 0));
  training.Set("device", JsonValue::String(device.str()));
}

}  // namespace psd3d::tinyworld
