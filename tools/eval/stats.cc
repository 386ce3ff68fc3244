#include "tools/eval/stats.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"

namespace psd3d::eval {

MeanSe Summarize(const std::vector<double>& values) {
  MeanSe s;
  double sum = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++s.n;
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.mean = s.n > 0 ? sum / static_cast<double>(s.n) : nan;
  if (s.n < 2) {
    s.se = nan;
    return s;
  }
  double ss = 0;
  for (double v : values)
    if (!std::isnan(v)) ss += (v - s.mean) * (v - s.mean);
  s.se = std::sqrt(ss / static_cast<double>(s.n - 1) / static_cast<double>(s.n));
  return s;
}

std::string FormatMeanSe(const MeanSe& s, int decimals, double scale) {
  if (s.n == 0) return "–";
  if (std::isnan(s.se)) return absl::StrFormat("%.*f", decimals, s.mean * scale);
  return absl::StrFormat("%.*f ± %.*f", decimals, s.mean * scale, decimals, s.se * scale);
}

}  // namespace psd3d::eval
