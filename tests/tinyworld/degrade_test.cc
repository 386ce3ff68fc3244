// Each degradation changes a render the way its name says, more with severity, and preference pairs
// are deterministic under a seed.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "worker/render/color_space.h"
#include "worker/tinyworld/degrade.h"
#include "worker/tinyworld/tokenizer.h"

namespace psd3d::tinyworld {
namespace {

constexpr double kDeg = M_PI / 180.0;
const Subject kSubject{Color::kBlue, Shape::kCube};
constexpr float kYaw = 0.4f;

// One camera at 20° elevation, 30° azimuth, and its position.
CameraBatch Camera() { return WorldCameras(at::tensor({float(20 * kDeg)}), at::tensor({float(30 * kDeg)})); }
std::array<float, 3> CameraPosition() {
  at::Tensor p = Camera().position[0];
  return {p[0].item<float>(), p[1].item<float>(), p[2].item<float>()};
}

DegradeNoise Noise(uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return DrawDegradeNoise(g);
}

at::Tensor Render(const Scene& scene) { return RenderScenes({scene}, Camera()); }  // [1,3,64,64]
at::Tensor Clean() { return Render(SubjectScene(kSubject, kYaw)); }
at::Tensor Degraded(Degradation kind, float severity, uint64_t seed = 1) {
  return Render(DegradedScene(kSubject, kYaw, kind, severity, Noise(seed), CameraPosition()));
}
// The subject's silhouette [64,64] at this view (coverage > 0.5).
at::Tensor Silhouette() {
  return RenderSilhouettes(kSubject.shape, at::tensor({kYaw}), Camera())[0].gt(0.5);
}
// Pixels visibly off the white background, [64,64] bool.
at::Tensor Covered(const at::Tensor& image) { return std::get<0>(image[0].min(0)).lt(0.9); }

at::Tensor MeanObjectLab(const at::Tensor& image, const at::Tensor& mask) {
  at::Tensor m = mask.to(at::kFloat);
  return SrgbToLab((image[0] * m).sum({1, 2}) / m.sum());
}

// Centroid (x, y) in pixels of the covered pixels.
std::pair<double, double> Centroid(const at::Tensor& covered) {
  at::Tensor m = covered.to(at::kFloat);
  at::Tensor r = at::arange(64, at::kFloat);
  const double n = m.sum().item<double>();
  return {(m * r.view({1, 64})).sum().item<double>() / n, (m * r.view({64, 1})).sum().item<double>() / n};
}

// Mean squared Laplacian: high-frequency energy.
double HighFrequency(const at::Tensor& image) {
  at::Tensor x = image;
  at::Tensor lap = x.narrow(2, 1, 62).narrow(3, 1, 62) * 4 - x.narrow(2, 0, 62).narrow(3, 1, 62) -
                   x.narrow(2, 2, 62).narrow(3, 1, 62) - x.narrow(2, 1, 62).narrow(3, 0, 62) -
                   x.narrow(2, 1, 62).narrow(3, 2, 62);
  return lap.pow(2).mean().item<double>();
}

// Mean chroma (max − min channel) and mean value over `mask`.
double Chroma(const at::Tensor& image, const at::Tensor& mask) {
  at::Tensor c = std::get<0>(image[0].max(0)) - std::get<0>(image[0].min(0));
  return c.masked_select(mask).mean().item<double>();
}
double Brightness(const at::Tensor& image, const at::Tensor& mask) {
  return image[0].mean(0).masked_select(mask).mean().item<double>();
}

at::Tensor Severity(float s) { return at::tensor({s}); }

TEST(Degrade, NamesRoundTripAndUnknownNamesAreErrors) {
  ASSERT_EQ(AllDegradations().size(), static_cast<size_t>(kNumDegradations));
  for (Degradation k : AllDegradations()) EXPECT_EQ(*ParseDegradation(DegradationName(k)), k);
  absl::StatusOr<Degradation> bad = ParseDegradation("sepia");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'sepia'"), std::string::npos) << bad.status();
  EXPECT_FALSE(HasGrades(Degradation::kWrongShape));
  EXPECT_TRUE(IsSceneDegradation(Degradation::kCropped));
  EXPECT_FALSE(IsSceneDegradation(Degradation::kBlur));
}

TEST(Degrade, WrongColorMovesTheMeanObjectColorAwayMoreWithSeverity) {
  const at::Tensor mask = Silhouette();
  const at::Tensor clean = MeanObjectLab(Clean(), mask);
  const double mild = DeltaE76(MeanObjectLab(Degraded(Degradation::kWrongColor, 0.05f), mask), clean).item<double>();
  const double strong = DeltaE76(MeanObjectLab(Degraded(Degradation::kWrongColor, 1.0f), mask), clean).item<double>();
  EXPECT_GT(mild, 8) << "even the mildest wrong color is plainly visible";
  EXPECT_GT(strong, mild + 10);
  // The shape stays: the same silhouette (up to antialiased edge pixels).
  at::Tensor a = Covered(Degraded(Degradation::kWrongColor, 1.0f)), b = Covered(Clean());
  EXPECT_GT((a & b).sum().item<double>() / (a | b).sum().item<double>(), 0.97);
}

TEST(Degrade, WrongShapeChangesTheSilhouetteButNotTheColor) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const Scene s = DegradedScene(kSubject, kYaw, Degradation::kWrongShape, 0.5f, Noise(seed), CameraPosition());
    EXPECT_NE(s.objects[0].shape, kSubject.shape);
    EXPECT_EQ(s.objects[0].rgb, ColorRgb(kSubject.color));
    at::Tensor a = Covered(Render(s)), b = Covered(Clean());
    const double iou = (a & b).sum().item<double>() / (a | b).sum().item<double>();
    EXPECT_LT(iou, 0.9) << ShapeName(s.objects[0].shape);
  }
}

TEST(Degrade, FloatersCoverPixelsOutsideTheSubjectMoreWithSeverity) {
  // Outside a slightly grown silhouette, so antialiased edges do not count.
  at::Tensor outside = at::max_pool2d(Silhouette().to(at::kFloat).view({1, 1, 64, 64}), 5, 1, 2).view({64, 64}).lt(0.5);
  EXPECT_EQ((Covered(Clean()) & outside).sum().item<int64_t>(), 0);
  int64_t mild = 0, strong = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const Scene m = DegradedScene(kSubject, kYaw, Degradation::kFloaters, 0.05f, Noise(seed), CameraPosition());
    const Scene s = DegradedScene(kSubject, kYaw, Degradation::kFloaters, 1.0f, Noise(seed), CameraPosition());
    EXPECT_EQ(m.objects.size(), 2u);
    EXPECT_EQ(s.objects.size(), 7u);
    mild += (Covered(Render(m)) & outside).sum().item<int64_t>();
    strong += (Covered(Render(s)) & outside).sum().item<int64_t>();
  }
  EXPECT_GT(mild, 4 * 4);
  EXPECT_GT(strong, 4 * mild);
}

TEST(Degrade, OffCenterMovesTheCentroidMoreWithSeverity) {
  auto [cx, cy] = Centroid(Covered(Clean()));
  auto shift = [&](float s) {
    auto [x, y] = Centroid(Covered(Degraded(Degradation::kOffCenter, s)));
    return std::hypot(x - cx, y - cy);
  };
  EXPECT_GT(shift(0.01f), 4.0);  // pixels at 64×64
  EXPECT_GT(shift(1.0f), shift(0.01f) + 6.0);
}

TEST(Degrade, CroppedObjectsLeaveTheFrame) {
  auto border = [](const at::Tensor& covered) {
    return covered[0].sum().item<int64_t>() + covered[63].sum().item<int64_t>() +
           covered.select(1, 0).sum().item<int64_t>() + covered.select(1, 63).sum().item<int64_t>();
  };
  EXPECT_EQ(border(Covered(Clean())), 0);
  const int64_t mild = border(Covered(Degraded(Degradation::kCropped, 0.01f)));
  const int64_t strong = border(Covered(Degraded(Degradation::kCropped, 1.0f)));
  EXPECT_GT(mild, 0);
  EXPECT_GT(strong, mild);
}

TEST(Degrade, BlurLowersHighFrequencyEnergyMoreWithSeverity) {
  const at::Tensor clean = Clean();
  const double e0 = HighFrequency(clean);
  const double e1 = HighFrequency(BlurImages(clean, Severity(0.01f)));
  const double e2 = HighFrequency(BlurImages(clean, Severity(1.0f)));
  EXPECT_LT(e1, 0.7 * e0);
  EXPECT_LT(e2, 0.5 * e1);
  // The white background stays white; the mean color barely moves.
  at::Tensor blurred = BlurImages(clean, Severity(1.0f));
  EXPECT_NEAR(blurred[0][0][0][0].item<float>(), 1.0f, 1e-5);
  EXPECT_NEAR(blurred.mean().item<double>(), clean.mean().item<double>(), 2e-3);
}

TEST(Degrade, SpeckleAddsHighFrequencyNoiseAndStaysInRange) {
  const at::Tensor clean = Clean();
  at::Generator g = at::detail::createCPUGenerator(3);
  at::Tensor noise = at::randn(clean.sizes(), g);
  at::Tensor mild = SpeckleImages(clean, Severity(0.01f), noise), strong = SpeckleImages(clean, Severity(1.0f), noise);
  EXPECT_GT(HighFrequency(mild), 1.5 * HighFrequency(clean));
  EXPECT_GT(HighFrequency(strong), 3 * HighFrequency(mild));
  EXPECT_GE(strong.min().item<float>(), 0.0f);
  EXPECT_LE(strong.max().item<float>(), 1.0f);
}

TEST(Degrade, WashedOutIsPalerAndOverSaturatedIsMoreVivid) {
  const at::Tensor clean = Clean(), mask = Silhouette();
  const double chroma = Chroma(clean, mask), bright = Brightness(clean, mask);
  for (float s : {0.01f, 1.0f}) {
    at::Tensor washed = WashOutImages(clean, Severity(s));
    EXPECT_LT(Chroma(washed, mask), 0.75 * chroma) << s;
    EXPECT_GT(Brightness(washed, mask), bright + 0.1) << s;
    EXPECT_GT(Chroma(OverSaturateImages(clean, Severity(s)), mask), 1.15 * chroma) << s;
  }
  EXPECT_LT(Chroma(WashOutImages(clean, Severity(1.0f)), mask), Chroma(WashOutImages(clean, Severity(0.01f)), mask));
  // White stays white under both.
  EXPECT_FLOAT_EQ(WashOutImages(clean, Severity(1.0f))[0][1][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(OverSaturateImages(clean, Severity(1.0f))[0][1][0][0].item<float>(), 1.0f);
}

TEST(Degrade, PairsAreDeterministicUnderASeedAndWellFormed) {
  PairOptions options;
  options.subjects = {kSubject, {Color::kRed, Shape::kTorus}, {Color::kYellow, Shape::kSphere}};
  options.graded_fraction = 0.5;
  options.render.supersample = 1;  // keep the test fast
  auto make = [&](uint64_t seed) {
    at::Generator g = at::detail::createCPUGenerator(seed);
    return MakePreferencePairs(24, options, g, at::kCPU);
  };
  PreferencePairs a = make(11), b = make(11), c = make(12);
  ASSERT_EQ(a.size(), 24);
  EXPECT_TRUE(at::equal(a.winners, b.winners));
  EXPECT_TRUE(at::equal(a.losers, b.losers));
  EXPECT_TRUE(at::equal(a.prompt_ids, b.prompt_ids));
  EXPECT_EQ(a.prompts, b.prompts);
  EXPECT_FALSE(at::equal(a.losers, c.losers));

  EXPECT_EQ(a.winners.sizes(), (at::IntArrayRef{24, 3, 64, 64}));
  EXPECT_GE(a.losers.min().item<float>(), 0.0f);
  EXPECT_LE(a.losers.max().item<float>(), 1.0f);
  EXPECT_TRUE(at::equal(a.prompt_ids, *Tokenizer::TinyWorld().EncodeBatch(a.prompts)));
  int graded = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(*ParsePrompt(a.prompts[i]), a.subjects[i]);
    const float w = a.winner_severity[i].item<float>(), l = a.loser_severity[i].item<float>();
    EXPECT_GT(l, 0.0f);
    EXPECT_LE(l, 1.0f);
    if (w > 0) {
      ++graded;
      EXPECT_TRUE(HasGrades(a.kinds[i]));
      EXPECT_GE(l - w, options.min_severity_gap - 1e-5);
    }
    EXPECT_FALSE(at::equal(a.winners[i], a.losers[i])) << i << " " << DegradationName(a.kinds[i]);
  }
  EXPECT_GT(graded, 4);
  EXPECT_LT(graded, 20);
}

TEST(Degrade, GradedPairsDifferInSeverityOnly) {
  // Same view, same random choices: the milder wrong color is closer to the true color.
  PairOptions options;
  options.subjects = {kSubject};
  options.kinds = {Degradation::kWrongColor};
  options.graded_fraction = 1.0;
  options.render.supersample = 1;
  at::Generator g = at::detail::createCPUGenerator(5);
  PreferencePairs p = MakePreferencePairs(6, options, g, at::kCPU);
  const at::Tensor target = SrgbToLab(at::tensor({ColorRgb(kSubject.color)[0], ColorRgb(kSubject.color)[1],
                                                  ColorRgb(kSubject.color)[2]}));
  for (int64_t i = 0; i < p.size(); ++i) {
    at::Tensor wc = Covered(p.winners.narrow(0, i, 1)), lc = Covered(p.losers.narrow(0, i, 1));
    EXPECT_TRUE(at::equal(wc, lc)) << "same view and shape";
    const double dw = DeltaE76(MeanObjectLab(p.winners.narrow(0, i, 1), wc), target).item<double>();
    const double dl = DeltaE76(MeanObjectLab(p.losers.narrow(0, i, 1), lc), target).item<double>();
    EXPECT_LT(dw, dl) << i;
  }
}

}  // namespace
}  // namespace psd3d::tinyworld
