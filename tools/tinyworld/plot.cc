#include "tools/tinyworld/plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "worker/formats/png.h"

namespace psd3d::tinyworld {
namespace {

// 5×7 glyphs for ASCII 32..126: seven rows top to bottom, bit 4 is the leftmost column.
constexpr uint8_t kFont[95][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // ' '
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04},  // '!'
    {0x0a, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00},  // '"'
    {0x0a, 0x1f, 0x0a, 0x0a, 0x1f, 0x0a, 0x00},  // '#'
    {0x04, 0x0f, 0x14, 0x0e, 0x05, 0x1e, 0x04},  // '$'
    {0x19, 0x19, 0x02, 0x04, 0x08, 0x13, 0x13},  // '%'
    {0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d},  // '&'
    {0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},  // '\''
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},  // '('
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},  // ')'
    {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00},  // '*'
    {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00},  // '+'
    {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08},  // ','
    {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00},  // '-'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c},  // '.'
    {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10},  // '/'
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e},  // '0'
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e},  // '1'
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f},  // '2'
    {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e},  // '3'
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02},  // '4'
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e},  // '5'
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e},  // '6'
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // '7'
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e},  // '8'
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c},  // '9'
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00},  // ':'
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x04, 0x08},  // ';'
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02},  // '<'
    {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00},  // '='
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08},  // '>'
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // '?'
    {0x0e, 0x11, 0x01, 0x0d, 0x15, 0x15, 0x0e},  // '@'
    {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11},  // 'A'
    {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e},  // 'B'
    {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e},  // 'C'
    {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c},  // 'D'
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f},  // 'E'
    {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10},  // 'F'
    {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f},  // 'G'
    {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11},  // 'H'
    {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e},  // 'I'
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c},  // 'J'
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // 'K'
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f},  // 'L'
    {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11},  // 'M'
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // 'N'
    {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e},  // 'O'
    {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10},  // 'P'
    {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d},  // 'Q'
    {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11},  // 'R'
    {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e},  // 'S'
    {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // 'T'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e},  // 'U'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04},  // 'V'
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a},  // 'W'
    {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11},  // 'X'
    {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04},  // 'Y'
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f},  // 'Z'
    {0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e},  // '['
    {0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0x01},  // '\\'
    {0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e},  // ']'
    {0x04, 0x0a, 0x11, 0x00, 0x00, 0x00, 0x00},  // '^'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f},  // '_'
    {0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},  // '`'
    {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f},  // 'a'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e},  // 'b'
    {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e},  // 'c'
    {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f},  // 'd'
    {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e},  // 'e'
    {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08},  // 'f'
    {0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e},  // 'g'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},  // 'h'
    {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e},  // 'i'
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c},  // 'j'
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},  // 'k'
    {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e},  // 'l'
    {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11},  // 'm'
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},  // 'n'
    {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e},  // 'o'
    {0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10},  // 'p'
    {0x00, 0x00, 0x0f, 0x11, 0x0f, 0x01, 0x01},  // 'q'
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},  // 'r'
    {0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e},  // 's'
    {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06},  // 't'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d},  // 'u'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04},  // 'v'
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a},  // 'w'
    {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11},  // 'x'
    {0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e},  // 'y'
    {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f},  // 'z'
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02},  // '{'
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // '|'
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08},  // '}'
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},  // '~'
};

constexpr Rgb8 kBlack = {0, 0, 0}, kWhite = {255, 255, 255}, kGrid = {225, 225, 225}, kAxis = {60, 60, 60};
constexpr Rgb8 kPalette[] = {{31, 119, 180},  {214, 39, 40}, {44, 160, 44},   {255, 127, 14},
                             {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

constexpr int64_t kWidth = 900, kHeight = 560, kTextScale = 2;
constexpr int64_t kLeft = 120, kRight = 30, kTop = 56, kBottom = 84;  // plot area margins

// Pixel access to an [H,W,3] uint8 CPU image, optionally clipped to a rectangle.
struct Canvas {
  uint8_t* pixels;
  int64_t height, width;
  int64_t clip_x0 = 0, clip_y0 = 0, clip_x1 = std::numeric_limits<int64_t>::max(),
          clip_y1 = std::numeric_limits<int64_t>::max();

  void Set(int64_t x, int64_t y, Rgb8 c) const {
    if (x < std::max<int64_t>(0, clip_x0) || y < std::max<int64_t>(0, clip_y0) || x >= std::min(width, clip_x1) ||
        y >= std::min(height, clip_y1)) {
      return;
    }
    uint8_t* p = pixels + (y * width + x) * 3;
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
  void Fill(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb8 c) const {  // [x0,x1) × [y0,y1)
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = x0; x < x1; ++x) Set(x, y, c);
  }
  // A line of the given thickness (square brush), Bresenham.
  void Line(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb8 c, int64_t thickness) const {
    const int64_t dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    const int64_t lo = -(thickness - 1) / 2, hi = thickness / 2;
    int64_t err = dx + dy;
    while (true) {
      Fill(x0 + lo, y0 + lo, x0 + hi + 1, y0 + hi + 1, c);
      if (x0 == x1 && y0 == y1) break;
      const int64_t e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  void Text(int64_t x, int64_t y, const std::string& text, int64_t scale, Rgb8 c, bool vertical) const {
    for (size_t i = 0; i < text.size(); ++i) {
      const unsigned char ch = static_cast<unsigned char>(text[i]);
      const uint8_t* glyph = kFont[(ch >= 32 && ch < 127 ? ch : '?') - 32];
      const int64_t advance = static_cast<int64_t>(i) * kGlyphAdvance * scale;
      for (int64_t gy = 0; gy < kGlyphHeight; ++gy) {
        for (int64_t gx = 0; gx < kGlyphWidth; ++gx) {
          if (!(glyph[gy] & (1 << (kGlyphWidth - 1 - gx)))) continue;
          for (int64_t s = 0; s < scale * scale; ++s) {
            const int64_t u = advance + gx * scale + s % scale, v = gy * scale + s / scale;
            if (vertical) {
              Set(x + v, y - 1 - u, c);
            } else {
              Set(x + u, y + v, c);
            }
          }
        }
      }
    }
  }
};

Canvas CanvasOf(at::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == at::kByte && image.is_contiguous() &&
                  image.device().is_cpu(),
              "plot: images must be [H,W,3] uint8 contiguous CPU tensors");
  return Canvas{image.data_ptr<uint8_t>(), image.size(0), image.size(1)};
}

std::string FormatTick(double v) {
  if (v == 0) return "0";
  return absl::StrFormat("%g", v);
}

// An axis maps data values to pixels between two pixel positions, linearly or in log10.
struct Axis {
  double lo, hi;  // data range (log10 of it for log axes)
  bool log;
  int64_t p0, p1;                   // pixel of lo and of hi
  std::vector<double> ticks;        // labelled, in data units
  std::vector<double> minor_ticks;  // unlabelled (log axes)

  double Pixel(double v) const {
    const double u = log ? std::log10(v) : v;
    return p0 + (u - lo) / (hi - lo) * static_cast<double>(p1 - p0);
  }
};

// Linear axis over [lo, hi] expanded to "nice" tick multiples (1, 2 or 5 × 10^k, about 6 ticks).
Axis LinearAxis(double lo, double hi, int64_t p0, int64_t p1) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / 6, mag = std::pow(10.0, std::floor(std::log10(raw))), norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  Axis a{std::floor(lo / step) * step, std::ceil(hi / step) * step, false, p0, p1, {}, {}};
  for (double v = a.lo; v <= a.hi + step * 1e-6; v += step) a.ticks.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return a;
}

// Log axis over whole decades covering [lo, hi] (both > 0); 2× and 5× ticks are labelled when it spans
// at most two decades.
Axis LogAxis(double lo, double hi, int64_t p0, int64_t p1) {
  double d0 = std::floor(std::log10(lo)), d1 = std::ceil(std::log10(hi));
  if (d1 <= d0) d1 = d0 + 1;
  Axis a{d0, d1, true, p0, p1, {}, {}};
  const bool few = d1 - d0 <= 2;
  for (double d = d0; d <= d1; ++d) {
    const double base = std::pow(10.0, d);
    a.ticks.push_back(base);
    if (d == d1) break;
    for (int m = 2; m <= 9; ++m) {
      if (few && (m == 2 || m == 5)) {
        a.ticks.push_back(m * base);
      } else {
        a.minor_ticks.push_back(m * base);
      }
    }
  }
  return a;
}

bool Drawable(double x, double y, bool log_y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); }

void DrawAxes(const Canvas& c, const Axis& x, const Axis& y) {
  const int64_t left = x.p0, right = x.p1, bottom = y.p0, top = y.p1;
  for (double v : x.ticks) {
    const int64_t px = std::lround(x.Pixel(v));
    c.Line(px, top, px, bottom, kGrid, 1);
    c.Line(px, bottom, px, bottom + 6, kAxis, 2);
    const std::string label = FormatTick(v);
    c.Text(px - TextWidth(label, kTextScale) / 2, bottom + 12, label, kTextScale, kBlack, false);
  }
  for (double v : y.minor_ticks) {
    const int64_t py = std::lround(y.Pixel(v));
    c.Line(left - 4, py, left, py, kAxis, 1);
  }
  for (double v : y.ticks) {
    const int64_t py = std::lround(y.Pixel(v));
    c.Line(left, py, right, py, kGrid, 1);
    c.Line(left - 6, py, left, py, kAxis, 2);
    const std::string label = FormatTick(v);
    c.Text(left - 10 - TextWidth(label, kTextScale), py - kGlyphHeight * kTextScale / 2, label, kTextScale, kBlack,
           false);
  }
  c.Line(left, top, left, bottom, kAxis, 2);
  c.Line(left, bottom, right, bottom, kAxis, 2);
}

void DrawLegend(const Canvas& c, const std::vector<PlotSeries>& series, int64_t right, int64_t top) {
  int64_t text_width = 0;
  for (const auto& s : series) text_width = std::max(text_width, TextWidth(s.first, kTextScale));
  const int64_t row = kGlyphHeight * kTextScale + 10, swatch = 28;
  const int64_t w = text_width + swatch + 30, h = row * static_cast<int64_t>(series.size()) + 10;
  const int64_t x0 = right - w - 12, y0 = top + 12;
  c.Fill(x0, y0, x0 + w, y0 + h, kWhite);
  c.Line(x0, y0, x0 + w, y0, kAxis, 1), c.Line(x0, y0 + h, x0 + w, y0 + h, kAxis, 1);
  c.Line(x0, y0, x0, y0 + h, kAxis, 1), c.Line(x0 + w, y0, x0 + w, y0 + h, kAxis, 1);
  for (size_t i = 0; i < series.size(); ++i) {
    const int64_t y = y0 + 10 + static_cast<int64_t>(i) * row;
    const Rgb8 color = kPalette[i % std::size(kPalette)];
    c.Line(x0 + 10, y + kGlyphHeight * kTextScale / 2, x0 + 10 + swatch, y + kGlyphHeight * kTextScale / 2, color, 3);
    c.Text(x0 + 20 + swatch, y, series[i].first, kTextScale, kBlack, false);
  }
}

}  // namespace

int64_t TextWidth(const std::string& text, int64_t scale) {
  return text.empty() ? 0 : (static_cast<int64_t>(text.size()) * kGlyphAdvance - 1) * scale;
}

void DrawText(at::Tensor& image, int64_t x, int64_t y, const std::string& text, int64_t scale, Rgb8 color,
              bool vertical) {
  CanvasOf(image).Text(x, y, text, scale, color, vertical);
}

absl::Status WriteLossPlot(const std::string& png_path, const std::vector<PlotSeries>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label, bool log_y) {
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.second) {
      if (!Drawable(x, y, log_y)) continue;
      x_min = std::min(x_min, x), x_max = std::max(x_max, x), y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  }
  if (!(x_min <= x_max)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("plot '%s': no finite point to draw%s", title, log_y ? " (log scale needs y > 0)" : ""));
  }
  at::Tensor image = at::full({kHeight, kWidth, 3}, 255, at::kByte);
  Canvas canvas = CanvasOf(image);
  const Axis x_axis = LinearAxis(x_min, x_max, kLeft, kWidth - kRight);
  const Axis y_axis =
      log_y ? LogAxis(y_min, y_max, kHeight - kBottom, kTop) : LinearAxis(y_min, y_max, kHeight - kBottom, kTop);
  DrawAxes(canvas, x_axis, y_axis);

  Canvas plot = canvas;
  plot.clip_x0 = kLeft, plot.clip_x1 = kWidth - kRight + 1, plot.clip_y0 = kTop, plot.clip_y1 = kHeight - kBottom + 1;
  for (size_t i = 0; i < series.size(); ++i) {
    const Rgb8 color = kPalette[i % std::size(kPalette)];
    bool have_last = false;
    int64_t last_x = 0, last_y = 0;
    for (const auto& [x, y] : series[i].second) {
      if (!Drawable(x, y, log_y)) {
        have_last = false;
        continue;
      }
      const int64_t px = std::lround(x_axis.Pixel(x)), py = std::lround(y_axis.Pixel(y));
      if (have_last) {
        plot.Line(last_x, last_y, px, py, color, 2);
      } else {
        plot.Fill(px - 1, py - 1, px + 2, py + 2, color);  // a lone point stays visible
      }
      last_x = px, last_y = py, have_last = true;
    }
  }
  DrawLegend(canvas, series, kWidth - kRight, kTop);

  canvas.Text((kWidth - TextWidth(title, kTextScale)) / 2, 18, title, kTextScale, kBlack, false);
  const int64_t plot_mid_x = (kLeft + kWidth - kRight) / 2, plot_mid_y = (kTop + kHeight - kBottom) / 2;
  canvas.Text(plot_mid_x - TextWidth(x_label, kTextScale) / 2, kHeight - 32, x_label, kTextScale, kBlack, false);
  canvas.Text(14, plot_mid_y + TextWidth(y_label, kTextScale) / 2, y_label, kTextScale, kBlack, true);
  return WritePng(png_path, image);
}

}  // namespace psd3d::tinyworld
