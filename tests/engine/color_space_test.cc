// sRGB ↔ CIELAB (D65) against reference values, round trips, layouts and finite gradients.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "worker/render/color_space.h"

namespace psd3d {
namespace {

TEST(ColorSpace, ReferenceValues) {
  // White, black and the sRGB primaries (CIE values for D65, 2°).
  struct Case {
    ColorTriple rgb, lab;
  };
  const Case cases[] = {{{1, 1, 1}, {100, 0, 0}},
                        {{0, 0, 0}, {0, 0, 0}},
                        {{1, 0, 0}, {53.24f, 80.09f, 67.20f}},
                        {{0, 1, 0}, {87.73f, -86.18f, 83.18f}},
                        {{0, 0, 1}, {32.30f, 79.19f, -107.86f}},
                        {{0.5f, 0.5f, 0.5f}, {53.39f, 0, 0}}};
  for (const Case& c : cases) {
    const ColorTriple lab = ColorToLab(c.rgb);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(lab[i], c.lab[i], 0.02) << c.rgb[0] << "," << c.rgb[1] << "," << c.rgb[2];
    at::Tensor t = SrgbToLab(at::tensor({c.rgb[0], c.rgb[1], c.rgb[2]}));
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(t[i].item<float>(), lab[i], 1e-3);
  }
  EXPECT_NEAR(ColorDeltaE({1, 0, 0}, {1, 0, 0}), 0, 1e-9);
  EXPECT_NEAR(ColorDeltaE({1, 1, 1}, {0, 0, 0}), 100, 1e-3);
}

TEST(ColorSpace, RoundTripsAndChannelLayouts) {
  at::Generator g = at::detail::createCPUGenerator(1);
  at::Tensor rgb = at::rand({2, 3, 5, 7}, g, at::TensorOptions().dtype(at::kDouble));
  at::Tensor lab = SrgbToLab(rgb, 1);
  EXPECT_EQ(lab.sizes(), rgb.sizes());
  EXPECT_TRUE(at::allclose(LabToSrgb(lab, 1), rgb, 1e-9, 1e-9)) << (LabToSrgb(lab, 1) - rgb).abs().max();
  // Channels first or last: the same colors.
  EXPECT_TRUE(at::allclose(SrgbToLab(rgb.movedim(1, -1)), lab.movedim(1, -1), 1e-9, 1e-9));
  at::Tensor d = DeltaE76(lab, SrgbToLab(rgb.flip(0), 1), 1);
  EXPECT_EQ(d.sizes(), (at::IntArrayRef{2, 5, 7}));
  const ColorTriple back = LabToColor(ColorToLab({0.2f, 0.6f, 0.9f}));
  EXPECT_NEAR(back[0], 0.2f, 1e-5);
  EXPECT_NEAR(back[1], 0.6f, 1e-5);
  EXPECT_NEAR(back[2], 0.9f, 1e-5);
}

TEST(ColorSpace, GradientsAreFiniteEverywhere) {
  // 0 (the curves' linear segments), 1, out of range, and equal colors in ΔE.
  at::Tensor rgb = at::tensor({0.0f, 1.0f, -0.1f, 0.5f, 1.2f, 0.003f}).view({2, 3}).requires_grad_(true);
  at::Tensor lab = SrgbToLab(rgb);
  at::Tensor d = DeltaE76(lab, lab.detach()).sum() + LabToSrgb(lab).sum();
  d.backward();
  EXPECT_TRUE(at::isfinite(rgb.grad()).all().item<bool>()) << rgb.grad();
}

}  // namespace
}  // namespace psd3d
