// The few statistics the summary reports: a mean with its standard error, over runs, and the paired
// mean difference of a method against the baseline on the same (prompt, seed), whose standard error
// is what a paired design buys (prompt difficulty cancels out).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace psd3d::eval {

struct MeanSe {
  int64_t n = 0;
  double mean = 0;  // NaN when n = 0
  double se = 0;    // sample sd / √n; NaN when n < 2
};

// Over the present (non-NaN) values.
MeanSe Summarize(const std::vector<double>& values);

// "m ± se" with `decimals` digits after the point ("m" alone when se is NaN, "–" when there is no value);
// `scale` multiplies both (100 for percentages).
std::string FormatMeanSe(const MeanSe& s, int decimals, double scale = 1);

}  // namespace psd3d::eval
