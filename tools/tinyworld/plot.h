// Small self-drawn figures for the trainers' reports: line plots of loss curves and text labels on
// image grids, written as PNG with psd3d::WritePng. No plotting package exists on the GPU machine, so
// this draws pixels itself: axes, "nice" ticks with labels, grid lines, a legend, and text in a built-in
// 5×7 bitmap font (printable ASCII; anything else draws as '?').
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace psd3d::tinyworld {

// One named curve: (x, y) points in drawing order.
using PlotSeries = std::pair<std::string, std::vector<std::pair<double, double>>>;

// A line plot of `series` (up to 8 distinguishable colors, then repeating) with a title, axis labels and
// a legend, written as a PNG (900×560) to `png_path`. With `log_y` the y axis is logarithmic and points
// with y ≤ 0 are skipped. Non-finite points are skipped. INVALID_ARGUMENT when no series has a point
// to draw; the file error otherwise.
absl::Status WriteLossPlot(const std::string& png_path, const std::vector<PlotSeries>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label, bool log_y);

using Rgb8 = std::array<uint8_t, 3>;
inline constexpr int64_t kGlyphWidth = 5, kGlyphHeight = 7, kGlyphAdvance = 6;  // font pixels at scale 1

// Width in pixels of `text` drawn at `scale` (every glyph advances kGlyphAdvance·scale).
int64_t TextWidth(const std::string& text, int64_t scale);
// Draws `text` with its top-left corner at (x, y) (column, row) into `image` [H,W,3] uint8, contiguous
// on CPU; pixels outside the image are skipped. Vertical text runs bottom-to-top from (x, y) as its
// bottom-left corner.
void DrawText(at::Tensor& image, int64_t x, int64_t y, const std::string& text, int64_t scale, Rgb8 color,
              bool vertical = false);

}  // namespace psd3d::tinyworld
