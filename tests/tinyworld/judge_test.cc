// The judge: its thresholds come from the palette; ground-truth renders of every subject are right in
// shape and color in both modes, and the same renders judged against any other color or shape are
// wrong; floaters are measured on welded meshes; a colored primitive written to GLB and judged from the
// file (the defaults: 8 cameras, 12 yaws) is right; the report's JSON and reward scores.
#include "worker/tinyworld/judge.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "worker/formats/glb.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/mesh/primitives.h"
#include "worker/render/color_space.h"

namespace psd3d::tinyworld {
namespace {

// Four of the judge's cameras (two elevations, four sides) keep the CPU time of the full sweeps small.
CameraBatch FourCameras() {
  CameraBatch all = JudgeCameras();
  at::Tensor idx = at::tensor({0, 3, 5, 6}, at::kLong);
  return WorldCameras(all.elevation.index_select(0, idx), all.azimuth.index_select(0, idx));
}

TEST(Judge, ThresholdsComeFromThePalette) {
  // Mask: half the distance from white of the lightest palette color (pink's green channel, 0.48).
  EXPECT_NEAR(MaskThreshold(), 0.5 * (1 - 0.48), 1e-6);
  const PaletteThresholdInfo& t = PaletteThreshold();
  std::printf("palette ΔE threshold %.2f (half the ΔE between %s and %s references, %s, view %d)\n", t.delta_e,
              std::string(ColorName(t.a)).c_str(), std::string(ColorName(t.b)).c_str(),
              std::string(ShapeName(t.shape)).c_str(), t.view);
  RecordProperty("palette_delta_e_threshold", std::to_string(t.delta_e));
  EXPECT_NE(t.a, t.b);
  // Far above a just-noticeable difference (2.3) and below half of the albedos' own smallest distance.
  EXPECT_GT(t.delta_e, 5);
  double smallest_albedo = 1e9;
  for (int a = 0; a < kNumColors; ++a) {
    for (int b = a + 1; b < kNumColors; ++b) {
      smallest_albedo =
          std::min(smallest_albedo, ColorDeltaE(ColorRgb(static_cast<Color>(a)), ColorRgb(static_cast<Color>(b))));
    }
  }
  EXPECT_LT(t.delta_e, smallest_albedo);
  // A white image has no object; a rendered subject's mask is its silhouette.
  at::Tensor white = at::ones({1, 3, 8, 8});
  EXPECT_FALSE(ObjectMask(white).any().item<bool>());
  EXPECT_FALSE(ObjectMask(white - 0.1).any().item<bool>());  // background noise stays out
}

TEST(Judge, ARenderAtAGridYawIsItsOwnReference) {
  // The references (synthesized from black and white renders, judge.cc) equal direct renders: a
  // subject rendered at a yaw the judge tries has ΔE ≈ 0 to its reference, for every color.
  const CameraBatch cameras = FourCameras();
  JudgeOptions options;
  options.yaw_steps = 3;
  Judge judge(cameras, options);
  for (Shape shape : {Shape::kCube, Shape::kTorus}) {
    for (int c = 0; c < kNumColors; ++c) {
      const Subject s{static_cast<Color>(c), shape};
      const float yaw = YawMatters(shape) ? static_cast<float>(M_PI / 6) : 0.f;  // the second of 3 steps
      absl::StatusOr<JudgeReport> r =
          judge.JudgeImages(RenderScenes(std::vector<Scene>(4, SubjectScene(s, yaw)), cameras), s, JudgeMode::kShared);
      ASSERT_TRUE(r.ok());
      EXPECT_LT(r->mean_delta_e, 1e-3) << SubjectName(s);
      EXPECT_NEAR(r->views[0].yaw, yaw, 1e-6);
      EXPECT_GT(r->mean_iou, 0.999) << SubjectName(s);
    }
  }
}

// Every subject rendered at a random yaw (the same for all views) and judged in both modes; then the
// same images against every other color and every other shape.
TEST(Judge, GroundTruthRendersAreRightAndOtherSubjectsWrong) {
  const CameraBatch cameras = FourCameras();
  const int64_t v = cameras.size();
  JudgeOptions options;
  options.yaw_steps = 6;
  Judge judge(cameras, options);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
  const at::Tensor yaws = at::rand({48}, gen) * (2 * M_PI);
  std::vector<Scene> scenes;
  for (const Subject& s : AllSubjects()) {
    for (int64_t i = 0; i < v; ++i) scenes.push_back(SubjectScene(s, yaws[SubjectIndex(s)].item<float>()));
  }
  at::Tensor cams_idx = at::arange(v, at::kLong).repeat({48});
  CameraBatch all_cameras =
      WorldCameras(cameras.elevation.index_select(0, cams_idx), cameras.azimuth.index_select(0, cams_idx));
  const at::Tensor renders = RenderScenes(scenes, all_cameras).view({48, v, 3, 64, 64});

  int views = 0, right_shape = 0, right_color = 0;
  double worst_delta_e = 0, min_iou = 1;
  for (const Subject& s : AllSubjects()) {
    const at::Tensor images = renders[SubjectIndex(s)];
    for (JudgeMode mode : {JudgeMode::kPerImage, JudgeMode::kShared}) {
      absl::StatusOr<JudgeReport> r = judge.JudgeImages(images, s, mode);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(r->shape_correct) << SubjectName(s) << " " << JudgeModeName(mode) << ": " << ShapeName(r->shape);
      EXPECT_TRUE(r->color_correct) << SubjectName(s) << " " << JudgeModeName(mode) << ": ΔE " << r->mean_delta_e;
      EXPECT_EQ(r->nearest_color, s.color) << SubjectName(s);
      for (const ViewJudgement& j : r->views) {
        ++views;
        right_shape += j.shape_correct;
        right_color += j.color_correct && j.nearest_color == s.color;
        worst_delta_e = std::max(worst_delta_e, j.delta_e);
        min_iou = std::min(min_iou, j.iou);
      }
    }
    // Every other color is wrong (and the render's own is the nearest); every other shape is wrong.
    for (int c = 0; c < kNumColors; ++c) {
      if (c == static_cast<int>(s.color)) continue;
      absl::StatusOr<JudgeReport> r = judge.JudgeImages(images, {static_cast<Color>(c), s.shape}, JudgeMode::kPerImage);
      ASSERT_TRUE(r.ok());
      EXPECT_FALSE(r->color_correct) << SubjectName(s) << " judged as " << ColorName(static_cast<Color>(c));
      EXPECT_EQ(r->color_accuracy, 0) << SubjectName(s) << " judged as " << ColorName(static_cast<Color>(c));
      EXPECT_EQ(r->nearest_color, s.color);
      EXPECT_TRUE(r->shape_correct);
    }
    for (int k = 0; k < kNumShapes; ++k) {
      if (k == static_cast<int>(s.shape)) continue;
      absl::StatusOr<JudgeReport> r = judge.JudgeImages(images, {s.color, static_cast<Shape>(k)}, JudgeMode::kShared);
      ASSERT_TRUE(r.ok());
      EXPECT_FALSE(r->shape_correct) << SubjectName(s) << " judged as " << ShapeName(static_cast<Shape>(k));
      EXPECT_EQ(r->shape_accuracy, 0);
      EXPECT_TRUE(r->color_correct);
    }
  }
  std::printf("clean renders: %d views, shape right %d, color right %d, worst ΔE %.2f (threshold %.2f), min IoU %.3f\n",
              views, right_shape, right_color, worst_delta_e, PaletteThreshold().delta_e, min_iou);
  EXPECT_EQ(right_shape, views);
  EXPECT_EQ(right_color, views);
}

TEST(Judge, OffPaletteColorsAndEmptyImagesAreWrong) {
  const CameraBatch cameras = FourCameras();
  JudgeOptions options;
  options.yaw_steps = 4;
  Judge judge(cameras, options);
  // A red sphere washed out halfway to gray is neither red nor anything else in the palette.
  Scene washed = SubjectScene({Color::kRed, Shape::kSphere}, 0);
  washed.objects[0].rgb = {0.62f, 0.45f, 0.44f};
  at::Tensor images = RenderScenes(std::vector<Scene>(4, washed), cameras);
  absl::StatusOr<JudgeReport> r = judge.JudgeImages(images, {Color::kRed, Shape::kSphere}, JudgeMode::kPerImage);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->shape_correct);
  EXPECT_FALSE(r->color_correct);
  EXPECT_EQ(r->color_accuracy, 0);
  // Blank images: no object, nothing right.
  r = judge.JudgeImages(at::ones({4, 3, 64, 64}), {Color::kRed, Shape::kSphere}, JudgeMode::kShared);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->shape_correct);
  EXPECT_FALSE(r->color_correct);
  for (const ViewJudgement& j : r->views) EXPECT_FALSE(j.object_found);
}

TEST(Judge, BadImagesAreInvalidArgument) {
  const CameraBatch cameras = FourCameras();
  for (const at::Tensor& bad :
       {at::ones({3, 3, 64, 64}), at::ones({4, 3, 32, 32}), at::ones({4, 64, 64, 3}), at::full({4, 3, 64, 64}, NAN)}) {
    absl::StatusOr<JudgeReport> r = JudgeImages(bad, cameras, {Color::kRed, Shape::kCube}, JudgeMode::kPerImage);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad.sizes();
  }
}

// ---- meshes ----------------------------------------------------------------------------------------------

// `mesh` moved by `offset` and scaled by `scale` (about the origin first).
Mesh Placed(const Mesh& mesh, float scale, const std::array<float, 3>& offset) {
  Mesh m = mesh;
  m.vertices = mesh.vertices * scale + at::tensor({offset[0], offset[1], offset[2]});
  return m;
}

Mesh Concat(const Mesh& a, const Mesh& b) {
  Mesh m;
  m.vertices = at::cat({a.vertices, b.vertices});
  m.faces = at::cat({a.faces, b.faces + a.num_vertices()});
  return m;
}

TEST(Judge, FloaterShareWeldsCreasesAndMeasuresDetachedBlobs) {
  // The cube's render mesh has its 6 sides as separate pieces; welded, it is one.
  const Mesh cube = CubeMesh();
  EXPECT_GT(ConnectedComponents(cube).count, 1);
  EXPECT_EQ(ConnectedComponents(WeldVertices(cube)).count, 1);
  EXPECT_NEAR(FloaterShare(cube), 0, 1e-9);
  // A small sphere floating beside it: its share of the total area.
  const Mesh blob = Placed(SphereMesh(16), 0.15f, {0.9f, 0.9f, 0.f});
  const double a_cube = TotalArea(cube).item<double>(), a_blob = TotalArea(blob).item<double>();
  EXPECT_NEAR(FloaterShare(Concat(cube, blob)), a_blob / (a_cube + a_blob), 1e-5);
  // Two blobs; a blob larger than the cube makes the cube the floater.
  const Mesh big = Placed(SphereMesh(16), 1.2f, {3.f, 0.f, 0.f});
  const double a_big = TotalArea(big).item<double>();
  EXPECT_NEAR(FloaterShare(Concat(Concat(cube, blob), big)), (a_cube + a_blob) / (a_cube + a_blob + a_big), 1e-5);
}

// The primitive's render mesh turned by `yaw` about +y, in one flat color.
Mesh ColoredPrimitive(const Subject& s, float yaw) {
  Mesh m = ShapeMesh(s.shape);
  const float c = std::cos(yaw), n = std::sin(yaw);
  at::Tensor x = m.vertices.select(1, 0), y = m.vertices.select(1, 1), z = m.vertices.select(1, 2);
  m.vertices = at::stack({c * x + n * z, y, -n * x + c * z}, 1).contiguous();
  const Rgb rgb = ColorRgb(s.color);
  m.colors = at::tensor({rgb[0], rgb[1], rgb[2]}).expand({m.num_vertices(), 3}).contiguous();
  return m;
}

TEST(Judge, ColoredPrimitiveThroughGlbIsRight) {
  // Defaults (8 cameras, 12 yaws) on a turned pyramid: shape, color and no floaters; the same mesh
  // with a blob is still the right subject, with a floater share.
  const Subject s{Color::kGreen, Shape::kPyramid};
  const Mesh mesh = ColoredPrimitive(s, 0.4f);
  const std::string path = ::testing::TempDir() + "/judge_pyramid.glb";
  ASSERT_TRUE(WriteGlb(path, mesh).ok());
  absl::StatusOr<JudgeReport> r = JudgeGlb(path, s);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->views.size(), 8u);
  EXPECT_EQ(r->mode, JudgeMode::kShared);
  EXPECT_TRUE(r->shape_correct);
  EXPECT_TRUE(r->color_correct) << r->mean_delta_e;
  EXPECT_EQ(r->shape_accuracy, 1);
  EXPECT_EQ(r->color_accuracy, 1);
  EXPECT_GT(r->mean_iou, 0.9);
  // The shared yaw is the mesh's yaw modulo the pyramid's quarter turn (12 steps of 7.5°).
  const double yaw_deg = r->views[0].yaw * 180 / M_PI;
  EXPECT_LE(std::fabs(yaw_deg - 0.4 * 180 / M_PI), 3.75 + 1e-6) << yaw_deg;
  ASSERT_TRUE(r->floater_share.has_value());
  EXPECT_NEAR(*r->floater_share, 0, 1e-9);
  std::remove(path.c_str());

  // Judged as another subject: wrong.
  r = JudgeMesh(mesh, {Color::kBlue, Shape::kCone});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->shape_correct);
  EXPECT_FALSE(r->color_correct);
  EXPECT_EQ(r->nearest_color, Color::kGreen);
  EXPECT_EQ(r->shape, Shape::kPyramid);
}

TEST(Judge, MeshesWithoutColorsAreInvalidArgument) {
  absl::StatusOr<JudgeReport> r = JudgeMesh(CubeMesh(), {Color::kRed, Shape::kCube});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = JudgeGlb("/nonexistent/judge.glb", {Color::kRed, Shape::kCube});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

// ---- report --------------------------------------------------------------------------------------------

// A stand-in reward: the mean redness of the image, so scores are known.
class RednessReward : public RewardModel {
 public:
  std::string name() const override { return "redness"; }
  at::Device device() const override { return at::kCPU; }
  int64_t image_size() const override { return 64; }
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string& prompt) override { return at::zeros({1}); }
  at::Tensor Score(const at::Tensor& images, const at::Tensor&) override {
    return (images.select(1, 0) - images.select(1, 1)).mean({1, 2});
  }
};

TEST(Judge, ReportCarriesRewardsAndReadsAsJson) {
  const CameraBatch cameras = FourCameras();
  const Subject s{Color::kRed, Shape::kTorus};
  const at::Tensor images = RenderScenes(std::vector<Scene>(4, SubjectScene(s, 0)), cameras);
  RednessReward reward;
  JudgeOptions options;
  options.yaw_steps = 2;
  options.reward = &reward;
  absl::StatusOr<JudgeReport> r = JudgeImages(images, cameras, s, JudgeMode::kPerImage, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->reward.has_value());
  EXPECT_FALSE(r->eval_reward.has_value());
  EXPECT_NEAR(*r->reward, reward.Score(images, at::Tensor()).mean().item<double>(), 1e-6);
  EXPECT_GT(*r->reward, 0.05);

  absl::StatusOr<JsonValue> json = ParseJson(ReportToJson(*r).Dump());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->Find("subject")->text(), "red torus");
  EXPECT_TRUE(json->Find("held_out")->bool_value());
  EXPECT_EQ(json->Find("mode")->text(), "per_image");
  EXPECT_EQ(json->Find("shape")->text(), "torus");
  EXPECT_TRUE(json->Find("shape_correct")->bool_value());
  EXPECT_TRUE(json->Find("color_correct")->bool_value());
  EXPECT_NEAR(*json->Find("delta_e_threshold")->AsDouble(), PaletteThreshold().delta_e, 1e-9);
  EXPECT_EQ(json->Find("floater_share"), nullptr);
  ASSERT_EQ(json->Find("views")->items().size(), 4u);
  const JsonValue& view = json->Find("views")->items()[0];
  EXPECT_EQ(view.Find("nearest_color")->text(), "red");
  EXPECT_EQ(view.Find("shape_iou")->keys().size(), 6u);
  EXPECT_NE(view.Find("reward"), nullptr);
}

}  // namespace
}  // namespace psd3d::tinyworld
