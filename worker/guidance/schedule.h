// threestudio-style scalar schedules: a constant, or [start_step, start_value, end_value, end_step]
// (linear in between, held outside). Stage configs and the guidance's timestep window use them.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace psd3d {

struct ScalarSchedule {
  double start_value = 0, end_value = 0;
  int64_t start_step = 0, end_step = 0;

  static ScalarSchedule Constant(double v) { return {v, v, 0, 0}; }
  static ScalarSchedule Linear(int64_t start_step, double start_value, double end_value, int64_t end_step) {
    return {start_value, end_value, start_step, end_step};
  }
  // [v] or [start_step, start_value, end_value, end_step]; INVALID_ARGUMENT otherwise (negative or
  // non-integer steps, end before start, non-finite values), naming the problem.
  static absl::StatusOr<ScalarSchedule> FromList(const std::vector<double>& list);

  double At(int64_t step) const;
};

}  // namespace psd3d
