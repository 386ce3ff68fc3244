#include "worker/guidance/schedule.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace psd3d {

absl::StatusOr<ScalarSchedule> ScalarSchedule::FromList(const std::vector<double>& list) {
  for (double v : list)
    if (!std::isfinite(v)) return absl::InvalidArgumentError("schedule: values must be finite");
  if (list.size() == 1) return Constant(list[0]);
  if (list.size() != 4)
    return absl::InvalidArgumentError(
        absl::StrCat("schedule: expected [value] or [start_step, start, end, end_step], got ", list.size(), " numbers"));
  for (double s : {list[0], list[3]})
    if (s < 0 || s != std::floor(s) || s > 1e12)
      return absl::InvalidArgumentError(absl::StrCat("schedule: step ", s, " must be a non-negative integer"));
  if (list[3] < list[0])
    return absl::InvalidArgumentError(absl::StrCat("schedule: end step ", list[3], " is before start step ", list[0]));
  return Linear(static_cast<int64_t>(list[0]), list[1], list[2], static_cast<int64_t>(list[3]));
}

double ScalarSchedule::At(int64_t step) const {
  if (end_step <= start_step) return step < start_step ? start_value : end_value;  // a constant or a jump
  if (step <= start_step) return start_value;
  if (step >= end_step) return end_value;
  const double f = static_cast<double>(step - start_step) / static_cast<double>(end_step - start_step);
  return start_value + f * (end_value - start_value);
}

}  // namespace psd3d
