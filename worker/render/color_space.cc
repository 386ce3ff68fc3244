#include "worker/render/color_space.h"

#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include <c10/core/GradMode.h>

namespace psd3d {
namespace {

using Mat = std::array<std::array<double, 3>, 3>;

// Linear sRGB → XYZ (D65), rows X, Y, Z.
constexpr Mat kRgbToXyz = {{{0.4124564, 0.3575761, 0.1804375},
                            {0.2126729, 0.7151522, 0.0721750},
                            {0.0193339, 0.1191920, 0.9503041}}};

// Its exact inverse (cofactors), so that Lab → sRGB → Lab round trips to double precision.
const Mat& XyzToRgb() {
  static const Mat inverse = [] {
    const Mat& m = kRgbToXyz;
    Mat c;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        c[j][i] = m[(i + 1) % 3][(j + 1) % 3] * m[(i + 2) % 3][(j + 2) % 3] -
                  m[(i + 1) % 3][(j + 2) % 3] * m[(i + 2) % 3][(j + 1) % 3];
    const double det = m[0][0] * c[0][0] + m[0][1] * c[1][0] + m[0][2] * c[2][0];
    for (auto& row : c)
      for (double& x : row) x /= det;
    return c;
  }();
  return inverse;
}
constexpr double kWhite[3] = {0.95047, 1.0, 1.08883};  // D65
constexpr double kEpsilon = 216.0 / 24389.0;          // CIE's ε: where the cube root meets the line
constexpr double kKappa = 24389.0 / 27.0;              // CIE's κ

// The conversions' constant tensors: linear sRGB → XYZ and back (transposed, for x·Mᵀ) and the D65
// white point.
enum class ColorConstant { kRgbToXyzT, kXyzToRgbT, kWhite };

// A constant as `options`' device and dtype, made once per (constant, device, dtype): copying it from
// the host on every call would make the host wait for the GPU, and a CUDA graph cannot capture such a
// copy. The lookup allocates nothing.
const at::Tensor& Constant(ColorConstant which, const at::TensorOptions& options) {
  static std::mutex mu;
  // Never destroyed: a device tensor must not be freed after the allocator at exit.
  static auto* cache = new std::map<std::tuple<int, int, int, int>, at::Tensor>();
  const at::Device device = options.device();
  std::lock_guard<std::mutex> lock(mu);
  at::Tensor& t = (*cache)[{static_cast<int>(which), static_cast<int>(device.type()), device.index(),
                            static_cast<int>(c10::typeMetaToScalarType(options.dtype()))}];
  if (!t.defined()) {
    c10::NoGradGuard no_grad;
    const auto dbl = at::TensorOptions().dtype(at::kDouble);
    if (which == ColorConstant::kWhite) {
      t = at::tensor({kWhite[0], kWhite[1], kWhite[2]}, dbl).to(options);
    } else {
      const Mat& m = which == ColorConstant::kRgbToXyzT ? kRgbToXyz : XyzToRgb();
      at::Tensor mt = at::empty({3, 3}, dbl);
      auto a = mt.accessor<double, 2>();
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) a[j][i] = m[i][j];
      t = mt.to(options);
    }
  }
  return t;
}

// `x` [...,3] times a 3×3 matrix (row i of the matrix gives output component i).
at::Tensor Mat3(const at::Tensor& x, ColorConstant transposed) {
  return at::matmul(x, Constant(transposed, x.options()));
}

at::Tensor WhitePoint(const at::Tensor& like) { return Constant(ColorConstant::kWhite, like.options()); }

// CIE's f(t): cube root above ε, a line below (clamped branches keep gradients finite).
at::Tensor LabF(const at::Tensor& t) {
  at::Tensor cube = at::pow(at::clamp_min(t, kEpsilon), 1.0 / 3.0);
  at::Tensor line = (kKappa * t + 16.0) / 116.0;
  return at::where(t > kEpsilon, cube, line);
}

at::Tensor LabFInverse(const at::Tensor& f) {
  at::Tensor f3 = f * f * f;
  at::Tensor line = (116.0 * f - 16.0) / kKappa;
  return at::where(f3 > kEpsilon, f3, line);
}

double SrgbToLinear1(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
double LinearToSrgb1(double l) { return l <= 0.0031308 ? 12.92 * l : 1.055 * std::pow(l, 1.0 / 2.4) - 0.055; }
double LabF1(double t) { return t > kEpsilon ? std::cbrt(t) : (kKappa * t + 16.0) / 116.0; }
double LabFInverse1(double f) { return f * f * f > kEpsilon ? f * f * f : (116.0 * f - 16.0) / kKappa; }

}  // namespace

at::Tensor SrgbToLinear(const at::Tensor& srgb) {
  at::Tensor curve = at::pow((at::clamp_min(srgb, 0.04045) + 0.055) / 1.055, 2.4);
  return at::where(srgb > 0.04045, curve, srgb / 12.92);
}

at::Tensor LinearToSrgb(const at::Tensor& linear) {
  at::Tensor curve = 1.055 * at::pow(at::clamp_min(linear, 0.0031308), 1.0 / 2.4) - 0.055;
  return at::where(linear > 0.0031308, curve, linear * 12.92);
}

at::Tensor SrgbToLab(const at::Tensor& srgb, int64_t dim) {
  TORCH_CHECK(srgb.size(dim) == 3, "SrgbToLab: dimension ", dim, " must have 3 components, got ", srgb.sizes());
  at::Tensor xyz = Mat3(SrgbToLinear(srgb.movedim(dim, -1)), ColorConstant::kRgbToXyzT) / WhitePoint(srgb);
  at::Tensor f = LabF(xyz);
  at::Tensor fx = f.select(-1, 0), fy = f.select(-1, 1), fz = f.select(-1, 2);
  at::Tensor lab = at::stack({116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)}, -1);
  return lab.movedim(-1, dim);
}

at::Tensor LabToSrgb(const at::Tensor& lab, int64_t dim) {
  TORCH_CHECK(lab.size(dim) == 3, "LabToSrgb: dimension ", dim, " must have 3 components, got ", lab.sizes());
  at::Tensor v = lab.movedim(dim, -1);
  at::Tensor fy = (v.select(-1, 0) + 16.0) / 116.0;
  at::Tensor fx = fy + v.select(-1, 1) / 500.0;
  at::Tensor fz = fy - v.select(-1, 2) / 200.0;
  at::Tensor xyz = LabFInverse(at::stack({fx, fy, fz}, -1)) * WhitePoint(lab);
  return LinearToSrgb(Mat3(xyz, ColorConstant::kXyzToRgbT)).movedim(-1, dim);
}

at::Tensor DeltaE76(const at::Tensor& lab_a, const at::Tensor& lab_b, int64_t dim) {
  // sqrt(Σd² + tiny): the distance's gradient stays finite where the colors coincide.
  return at::sqrt((lab_a - lab_b).pow(2).sum(dim) + 1e-12);
}

ColorTriple ColorToLab(const ColorTriple& srgb) {
  double lin[3], f[3];
  for (int i = 0; i < 3; ++i) lin[i] = SrgbToLinear1(srgb[i]);
  for (int i = 0; i < 3; ++i) {
    const double xyz = kRgbToXyz[i][0] * lin[0] + kRgbToXyz[i][1] * lin[1] + kRgbToXyz[i][2] * lin[2];
    f[i] = LabF1(xyz / kWhite[i]);
  }
  return {static_cast<float>(116.0 * f[1] - 16.0), static_cast<float>(500.0 * (f[0] - f[1])),
          static_cast<float>(200.0 * (f[1] - f[2]))};
}

ColorTriple LabToColor(const ColorTriple& lab) {
  const double fy = (lab[0] + 16.0) / 116.0;
  const double f[3] = {fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0};
  double xyz[3];
  for (int i = 0; i < 3; ++i) xyz[i] = LabFInverse1(f[i]) * kWhite[i];
  const Mat& m = XyzToRgb();
  ColorTriple out;
  for (int i = 0; i < 3; ++i) {
    const double lin = m[i][0] * xyz[0] + m[i][1] * xyz[1] + m[i][2] * xyz[2];
    out[i] = static_cast<float>(LinearToSrgb1(lin));
  }
  return out;
}

double ColorDeltaE(const ColorTriple& srgb_a, const ColorTriple& srgb_b) {
  const ColorTriple a = ColorToLab(srgb_a), b = ColorToLab(srgb_b);
  double s = 0;
  for (int i = 0; i < 3; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

}  // namespace psd3d
