// The evaluation's picture grid: rows are prompts, columns the methods, each cell a run's exported GLB
// rendered like the tiny world (tinyworld::RenderMesh) from one judge-like view. Column 0 is the
// prompt's ground truth (the world's own render of the subject) to compare against. The image has no
// text; summary.md lists the row and column order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "tools/eval/results_csv.h"

namespace psd3d::eval {

inline constexpr double kGridElevationDeg = 20.0;
inline constexpr double kGridAzimuthDeg = 45.0;

struct GridLayout {
  uint64_t seed = 1;                 // the runs shown: this seed's
  std::vector<std::string> prompts;  // rows: every held-out prompt, then up to max_seen seen ones
  std::vector<std::string> methods;  // columns after the ground truth, in the report's method order
};

// Seed 1 (or the smallest seed present); held-out prompts first, then up to `max_seen` seen prompts
// spread evenly over those present (subject order), so the rows vary in color and shape.
GridLayout ChooseGridLayout(const std::vector<RunResult>& results, int64_t max_seen = 6);

// The grid [rows·(cell+gap)+gap, (1+methods)·(cell+gap)+gap, 3] float in [0,1] on the CPU. A cell whose
// run is missing, failed or whose GLB cannot be read is light gray with a dark cross, and `notes` gets
// a line saying which and why. GLB paths are relative to `out_dir`.
at::Tensor RenderGrid(const std::vector<RunResult>& results, const GridLayout& layout, const std::string& out_dir,
                      int64_t cell, std::vector<std::string>* notes);

}  // namespace psd3d::eval
