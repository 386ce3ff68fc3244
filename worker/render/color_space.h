// sRGB ↔ CIELAB (D65 white point) and the CIE76 color difference ΔE*ab: the tiny world's measure of
// "how far is this color from the one the prompt asked for" (the judge's color accuracy, the reward's
// graded wrong-color degradation and its gradient check). ΔE ≈ 2.3 is a just-noticeable difference;
// the world's palette colors are 30–90 apart.
//
// Path: sRGB (IEC 61966-2-1 transfer curve) → linear RGB → XYZ (sRGB primaries, D65) → L*a*b*.
// The tensor functions take the 3 components along `dim` (channels first [B,3,H,W] → dim 1, colors
// [...,3] → dim −1), work on any float dtype and device, and are differentiable everywhere (branches
// are clamped so no NaN leaks into gradients at 0 or negative inputs).
#pragma once

#include <array>

#include <ATen/ATen.h>

namespace psd3d {

// Transfer curves, elementwise. Negative inputs map to the linear segment.
at::Tensor SrgbToLinear(const at::Tensor& srgb);
at::Tensor LinearToSrgb(const at::Tensor& linear);

// sRGB in [0,1] → L* in [0,100], a*, b* roughly in [−128,127].
at::Tensor SrgbToLab(const at::Tensor& srgb, int64_t dim = -1);
// The inverse; not clamped: colors outside the sRGB gamut come back outside [0,1].
at::Tensor LabToSrgb(const at::Tensor& lab, int64_t dim = -1);
// Euclidean distance in L*a*b* along `dim` (which is removed).
at::Tensor DeltaE76(const at::Tensor& lab_a, const at::Tensor& lab_b, int64_t dim = -1);

// The same for single colors (double precision inside).
using ColorTriple = std::array<float, 3>;
ColorTriple ColorToLab(const ColorTriple& srgb);
ColorTriple LabToColor(const ColorTriple& lab);
// ΔE76 between two sRGB colors.
double ColorDeltaE(const ColorTriple& srgb_a, const ColorTriple& srgb_b);

}  // namespace psd3d
