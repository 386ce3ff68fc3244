#include "worker/tinyworld/judge.h"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "worker/formats/glb_reader.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/render/color_space.h"

namespace psd3d::tinyworld {
namespace {

// Cameras `index` [N] (int64, any order, repeats allowed) of a batch.
CameraBatch SelectCameras(const CameraBatch& c, const at::Tensor& index) {
  auto pick = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, index.to(t.device())) : t; };
  CameraBatch out;
  out.c2w = pick(c.c2w);
  out.w2c = pick(c.w2c);
  out.proj = pick(c.proj);
  out.mvp = pick(c.mvp);
  out.position = pick(c.position);
  out.elevation = pick(c.elevation);
  out.azimuth = pick(c.azimuth);
  out.distance = pick(c.distance);
  out.fovy = pick(c.fovy);
  return out;
}

// Erodes masks [V,H,W] (bool) by one pixel (3×3): a pixel stays when no neighbour is background.
// Outside the image counts as object, so objects touching the border keep their border pixels.
at::Tensor Erode(const at::Tensor& mask) {
  at::Tensor background = (~mask).to(at::kFloat).unsqueeze(1);
  return mask & at::max_pool2d(background, {3, 3}, {1, 1}, {1, 1}).squeeze(1).eq(0);
}

// Mean colors [V,3] of images [V,3,H,W] over their eroded masks; over the whole mask when erosion
// leaves nothing (a sliver), white when the mask is empty (there is no object to measure).
at::Tensor MeanObjectColors(const at::Tensor& images, const at::Tensor& mask) {
  at::Tensor eroded = Erode(mask);
  at::Tensor use_eroded = eroded.flatten(1).any(1).view({-1, 1, 1});
  at::Tensor weight = at::where(use_eroded, eroded, mask).to(images.scalar_type()).unsqueeze(1);  // [V,1,H,W]
  at::Tensor count = weight.sum({2, 3});                                                          // [V,1]
  at::Tensor mean = (images * weight).sum({2, 3}) / count.clamp_min(1);
  return at::where(count > 0, mean, at::ones_like(mean));
}

// Lab [N,8,3] of the palette references: item i is shapes[i] at yaws[i] (radians) seen from camera
// views[i], rendered in each of the 8 palette colors and measured like a judged image. RenderScenes is
// linear in the albedo (Lambertian shading with ambient, composited over white, box-filtered), so the
// image of albedo c is black + c·(white − black) from one render in black and one in white albedo: the
// same pixels as 8 renders (to rounding; judge_test pins it) for a quarter of the work.
at::Tensor ReferenceLab(const CameraBatch& cameras, const std::vector<int64_t>& views, const std::vector<Shape>& shapes,
                        const std::vector<float>& yaws, const RenderOptions& render) {
  const int64_t n = static_cast<int64_t>(views.size());
  std::vector<Scene> scenes;
  std::vector<int64_t> camera_index;
  for (int64_t i = 0; i < n; ++i) {
    for (float albedo : {0.f, 1.f}) {
      Scene scene = SubjectScene({Color::kRed, shapes[i]}, yaws[i]);
      scene.objects[0].rgb = {albedo, albedo, albedo};
      scenes.push_back(scene);
      camera_index.push_back(views[i]);
    }
  }
  at::Tensor renders = RenderScenes(scenes, SelectCameras(cameras, at::tensor(camera_index, at::kLong)), render);
  renders = renders.view({n, 2, 1, 3, render.size, render.size});
  const at::Tensor black = renders.select(1, 0), white = renders.select(1, 1);  // [N,1,3,H,W]
  std::vector<float> palette;
  for (int c = 0; c < kNumColors; ++c) {
    const Rgb rgb = ColorRgb(static_cast<Color>(c));
    palette.insert(palette.end(), rgb.begin(), rgb.end());
  }
  const at::Tensor albedo = at::tensor(palette).to(renders.device()).view({1, kNumColors, 3, 1, 1});
  const at::Tensor images = (black + albedo * (white - black)).view({n * kNumColors, 3, render.size, render.size});
  return SrgbToLab(MeanObjectColors(images, ObjectMask(images)), -1).view({n, kNumColors, 3});
}

absl::StatusOr<at::Tensor> RewardScores(RewardModel* model, const at::Tensor& images, const Subject& expected) {
  c10::NoGradGuard no_grad;
  absl::StatusOr<at::Tensor> prompt = model->EncodePrompt(MakePrompt(expected, 0));
  if (!prompt.ok()) return prompt.status();
  return model->Score(images.to(model->device()), *prompt).to(at::kDouble).cpu();
}

Rgb ToRgb(const at::Tensor& t) {  // [3] CPU
  return {t[0].item<float>(), t[1].item<float>(), t[2].item<float>()};
}

JsonValue Number(double v) { return std::isfinite(v) ? JsonValue::Double(v) : JsonValue(); }

JsonValue Triple(const Rgb& v) {
  JsonValue a = JsonValue::Array();
  for (float x : v) a.Push(Number(x));
  return a;
}

}  // namespace

absl::string_view JudgeModeName(JudgeMode mode) { return mode == JudgeMode::kShared ? "shared" : "per_image"; }

double MaskThreshold() {
  double smallest = 1;
  for (int c = 0; c < kNumColors; ++c) {
    const Rgb rgb = ColorRgb(static_cast<Color>(c));
    smallest = std::min(smallest, 1.0 - *std::min_element(rgb.begin(), rgb.end()));
  }
  return 0.5 * smallest;
}

at::Tensor ObjectMask(const at::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "ObjectMask: images must be [V,3,H,W], got ", images.sizes());
  return (1 - images.amin(1)).gt(MaskThreshold());
}

const PaletteThresholdInfo& PaletteThreshold() {
  static std::once_flag once;
  static PaletteThresholdInfo* info = nullptr;
  std::call_once(once, [] {
    c10::NoGradGuard no_grad;
    const CameraBatch cameras = JudgeCameras(at::kCPU);
    const int64_t v = cameras.size();
    std::vector<int64_t> views;
    std::vector<Shape> shapes;
    for (int s = 0; s < kNumShapes; ++s) {
      for (int64_t i = 0; i < v; ++i) {
        views.push_back(i);
        shapes.push_back(static_cast<Shape>(s));
      }
    }
    at::Tensor lab = ReferenceLab(cameras, views, shapes, std::vector<float>(views.size(), 0.f), RenderOptions{});
    at::Tensor d = DeltaE76(lab.unsqueeze(2), lab.unsqueeze(1), -1);  // [S·V,8,8]
    d = d + at::eye(kNumColors, d.options()) * 1e9;                   // not a color against itself
    const int64_t flat = d.flatten().argmin().item<int64_t>();
    info = new PaletteThresholdInfo;
    info->delta_e = 0.5 * d.flatten()[flat].item<double>();
    const int64_t item = flat / (kNumColors * kNumColors), pair = flat % (kNumColors * kNumColors);
    info->a = static_cast<Color>(pair / kNumColors);
    info->b = static_cast<Color>(pair % kNumColors);
    info->shape = shapes[item];
    info->view = static_cast<int>(views[item]);
  });
  return *info;
}

// ---- Judge ---------------------------------------------------------------------------------------------

Judge::Judge(const CameraBatch& cameras, const JudgeOptions& options) : cameras_(cameras), options_(options) {
  TORCH_CHECK(options.yaw_steps >= 1, "Judge: yaw_steps must be >= 1");
}

at::Tensor Judge::Yaws(Shape shape) const {
  if (!YawMatters(shape)) return at::zeros({1});
  return at::arange(options_.yaw_steps, at::kFloat) * static_cast<float>(0.5 * M_PI / options_.yaw_steps);
}

const at::Tensor& Judge::Silhouettes(Shape shape) {
  auto it = silhouettes_.find(shape);
  if (it != silhouettes_.end()) return it->second;
  const int64_t v = cameras_.size();
  const at::Tensor yaws = Yaws(shape);
  const int64_t y = yaws.size(0);
  at::Tensor views = at::arange(v, at::kLong).repeat({y});
  at::Tensor coverage =
      RenderSilhouettes(shape, yaws.repeat_interleave(v), SelectCameras(cameras_, views), options_.render);
  const int64_t size = options_.render.size;
  return silhouettes_[shape] = coverage.ge(0.5).view({y, v, size, size});
}

at::Tensor Judge::PaletteLab(const std::vector<Shape>& shapes, const std::vector<int64_t>& yaw_index) {
  std::vector<int64_t> views;
  std::vector<Shape> miss_shapes;
  std::vector<float> miss_yaws;
  for (int64_t i = 0; i < static_cast<int64_t>(shapes.size()); ++i) {
    if (palette_lab_.count({i, shapes[i], yaw_index[i]})) continue;
    views.push_back(i);
    miss_shapes.push_back(shapes[i]);
    miss_yaws.push_back(Yaws(shapes[i])[yaw_index[i]].item<float>());
  }
  if (!views.empty()) {
    at::Tensor lab = ReferenceLab(cameras_, views, miss_shapes, miss_yaws, options_.render);
    for (size_t k = 0; k < views.size(); ++k) palette_lab_[{views[k], miss_shapes[k], yaw_index[views[k]]}] = lab[k];
  }
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < static_cast<int64_t>(shapes.size()); ++i) {
    out.push_back(palette_lab_.at({i, shapes[i], yaw_index[i]}));
  }
  return at::stack(out);
}

absl::StatusOr<JudgeReport> Judge::JudgeImages(const at::Tensor& input, const Subject& expected, JudgeMode mode) {
  const int64_t v = cameras_.size(), size = options_.render.size;
  if (!input.defined() || input.dim() != 4 || input.size(0) != v || input.size(1) != 3 || input.size(2) != size ||
      input.size(3) != size || !at::isFloatingType(input.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat("judge: images must be float [", v, ",3,", size, ",", size,
                                                   "] (one per camera), got ",
                                                   input.defined() ? c10::str(input.sizes()) : "none"));
  }
  c10::NoGradGuard no_grad;
  const at::Tensor images = input.detach().to(cameras_.mvp.device(), at::kFloat);
  if (!at::isfinite(images).all().item<bool>()) {
    return absl::InvalidArgumentError("judge: images have NaN or infinite values");
  }
  const at::Tensor mask = ObjectMask(images);  // [V,H,W]

  // Shape: each shape's IoU per view at its best yaw (per view or shared).
  std::vector<at::Tensor> iou_per_shape, yaw_per_shape;  // [V] each
  for (int s = 0; s < kNumShapes; ++s) {
    const at::Tensor& sil = Silhouettes(static_cast<Shape>(s));  // [Y,V,H,W]
    at::Tensor inter = (sil & mask).sum({2, 3}).to(at::kDouble), uni = (sil | mask).sum({2, 3}).to(at::kDouble);
    at::Tensor iou = inter / uni.clamp_min(1);  // [Y,V]
    if (mode == JudgeMode::kPerImage) {
      auto [best, index] = iou.max(0);
      iou_per_shape.push_back(best);
      yaw_per_shape.push_back(index);
    } else {
      const at::Tensor y = iou.mean(1).argmax();
      iou_per_shape.push_back(iou.index_select(0, y.view({1})).squeeze(0));
      yaw_per_shape.push_back(y.expand({v}));
    }
  }
  const at::Tensor shape_iou = at::stack(iou_per_shape, 1).cpu();  // [V,6]
  const at::Tensor shape_yaw = at::stack(yaw_per_shape, 1).cpu();  // [V,6] yaw indices
  const at::Tensor best_shape = shape_iou.argmax(1);               // [V]
  const at::Tensor found = mask.flatten(1).any(1).cpu();

  // Color: the mean object color against the palette's references at each view's shape and yaw.
  std::vector<Shape> view_shape;
  std::vector<int64_t> view_yaw;
  for (int64_t i = 0; i < v; ++i) {
    const int64_t s = best_shape[i].item<int64_t>();
    view_shape.push_back(static_cast<Shape>(s));
    view_yaw.push_back(shape_yaw[i][s].item<int64_t>());
  }
  const at::Tensor rgb = MeanObjectColors(images, mask);  // [V,3]
  const at::Tensor lab = SrgbToLab(rgb, -1);              // [V,3]
  const at::Tensor delta =
      DeltaE76(lab.unsqueeze(1), PaletteLab(view_shape, view_yaw), -1).to(at::kDouble).cpu();  // [V,8]
  const at::Tensor rgb_cpu = rgb.cpu(), lab_cpu = lab.cpu();
  const double threshold = PaletteThreshold().delta_e;

  JudgeReport report;
  report.expected = expected;
  report.mode = mode;
  report.delta_e_threshold = threshold;
  std::optional<at::Tensor> rewards[2];
  RewardModel* models[2] = {options_.reward, options_.eval_reward};
  for (int m = 0; m < 2; ++m) {
    if (models[m] == nullptr) continue;
    absl::StatusOr<at::Tensor> scores = RewardScores(models[m], images, expected);
    if (!scores.ok()) return scores.status();
    rewards[m] = *scores;
  }
  for (int64_t i = 0; i < v; ++i) {
    ViewJudgement j;
    j.object_found = found[i].item<bool>();
    j.shape = view_shape[i];
    j.shape_correct = j.object_found && j.shape == expected.shape;
    j.yaw = Yaws(j.shape)[view_yaw[i]].item<double>();
    for (int s = 0; s < kNumShapes; ++s) j.shape_iou[s] = shape_iou[i][s].item<double>();
    j.iou = j.shape_iou[static_cast<int>(j.shape)];
    j.mean_rgb = ToRgb(rgb_cpu[i]);
    j.lab = ToRgb(lab_cpu[i]);
    j.delta_e = delta[i][static_cast<int>(expected.color)].item<double>();
    const int64_t nearest = delta[i].argmin().item<int64_t>();
    j.nearest_color = static_cast<Color>(nearest);
    j.nearest_delta_e = delta[i][nearest].item<double>();
    j.color_correct = j.object_found && j.delta_e < threshold;
    if (rewards[0]) j.reward = (*rewards[0])[i].item<double>();
    if (rewards[1]) j.eval_reward = (*rewards[1])[i].item<double>();
    report.views.push_back(j);
  }

  // Aggregates over views.
  const bool any_found = found.any().item<bool>();
  report.shape = static_cast<Shape>(shape_iou.mean(0).argmax().item<int64_t>());
  report.shape_correct = any_found && report.shape == expected.shape;
  report.nearest_color = static_cast<Color>(delta.mean(0).argmin().item<int64_t>());
  for (const ViewJudgement& j : report.views) {
    report.shape_accuracy += j.shape_correct ? 1.0 / v : 0;
    report.color_accuracy += j.color_correct ? 1.0 / v : 0;
    report.mean_iou += j.iou / v;
    report.mean_expected_iou += j.shape_iou[static_cast<int>(expected.shape)] / v;
    report.mean_delta_e += j.delta_e / v;
  }
  report.color_correct = any_found && report.mean_delta_e < threshold;
  if (rewards[0]) report.reward = rewards[0]->mean().item<double>();
  if (rewards[1]) report.eval_reward = rewards[1]->mean().item<double>();
  return report;
}

absl::StatusOr<JudgeReport> JudgeImages(const at::Tensor& images, const CameraBatch& cameras, const Subject& expected,
                                        JudgeMode mode, const JudgeOptions& options) {
  Judge judge(cameras, options);
  return judge.JudgeImages(images, expected, mode);
}

// ---- meshes --------------------------------------------------------------------------------------------

Mesh WeldVertices(const Mesh& mesh) {
  const at::Tensor v = mesh.vertices.detach().to(at::kCPU, at::kDouble);
  Mesh out;
  if (v.size(0) == 0) {
    out.vertices = mesh.vertices.detach().cpu();
    out.faces = mesh.faces.cpu();
    return out;
  }
  const at::Tensor lo = std::get<0>(v.min(0));
  const double extent = std::max((std::get<0>(v.max(0)) - lo).max().item<double>(), 1e-30);
  const at::Tensor cells = at::round((v - lo) / (extent * 1e-6)).to(at::kLong);
  const at::Tensor inverse = std::get<1>(at::unique_dim(cells, 0, /*sorted=*/true, /*return_inverse=*/true));
  const int64_t count = inverse.max().item<int64_t>() + 1;
  out.vertices = at::zeros({count, 3}, at::kFloat).index_copy_(0, inverse, v.to(at::kFloat));
  out.faces = inverse.index_select(0, mesh.faces.cpu().reshape(-1)).view({-1, 3});
  return out;
}

double FloaterShare(const Mesh& mesh) {
  if (mesh.num_faces() == 0) return 0;
  Mesh welded = WeldVertices(mesh);
  welded.vertices = welded.vertices.to(at::kDouble);
  const Components components = ConnectedComponents(welded);
  const at::Tensor areas = FaceAreas(welded);
  const at::Tensor per_component =
      at::zeros({components.count}, areas.options()).index_add_(0, components.face_component.to(areas.device()), areas);
  const double total = per_component.sum().item<double>();
  if (!(total > 0)) return 0;
  return 1.0 - per_component.max().item<double>() / total;
}

absl::StatusOr<JudgeReport> JudgeMesh(const Mesh& mesh, const Subject& expected, const JudgeOptions& options) {
  if (auto st = ValidateMesh(mesh); !st.ok()) return absl::InvalidArgumentError(absl::StrCat("judge: ", st.message()));
  if (mesh.num_faces() == 0) return absl::InvalidArgumentError("judge: the mesh has no faces");
  if (!mesh.colors.defined() && !mesh.texture.defined()) {
    return absl::InvalidArgumentError("judge: the mesh has neither vertex colors nor a texture");
  }
  const CameraBatch cameras = JudgeCameras(options.device);
  const at::Tensor images = RenderMesh(mesh, cameras, options.render);
  Judge judge(cameras, options);
  absl::StatusOr<JudgeReport> report = judge.JudgeImages(images, expected, JudgeMode::kShared);
  if (!report.ok()) return report.status();
  report->floater_share = FloaterShare(mesh);
  return report;
}

absl::StatusOr<JudgeReport> JudgeGlb(const std::string& path, const Subject& expected, const JudgeOptions& options) {
  absl::StatusOr<Mesh> mesh = ReadGlb(path);
  if (!mesh.ok()) return mesh.status();
  absl::StatusOr<JudgeReport> report = JudgeMesh(*mesh, expected, options);
  if (!report.ok()) return absl::Status(report.status().code(), absl::StrCat(path, ": ", report.status().message()));
  return report;
}

// ---- JSON ----------------------------------------------------------------------------------------------

JsonValue ReportToJson(const JudgeReport& r) {
  auto name = [](absl::string_view s) { return JsonValue::String(std::string(s)); };
  JsonValue out = JsonValue::Object();
  out.Set("subject", JsonValue::String(SubjectName(r.expected)));
  out.Set("subject_index", JsonValue::Int(SubjectIndex(r.expected)));
  out.Set("held_out", JsonValue::Bool(IsHeldOut(r.expected)));
  out.Set("mode", name(JudgeModeName(r.mode)));
  out.Set("shape", name(ShapeName(r.shape)));
  out.Set("shape_correct", JsonValue::Bool(r.shape_correct));
  out.Set("shape_accuracy", Number(r.shape_accuracy));
  out.Set("mean_iou", Number(r.mean_iou));
  out.Set("mean_expected_iou", Number(r.mean_expected_iou));
  out.Set("nearest_color", name(ColorName(r.nearest_color)));
  out.Set("color_correct", JsonValue::Bool(r.color_correct));
  out.Set("color_accuracy", Number(r.color_accuracy));
  out.Set("mean_delta_e", Number(r.mean_delta_e));
  out.Set("delta_e_threshold", Number(r.delta_e_threshold));
  if (r.floater_share) out.Set("floater_share", Number(*r.floater_share));
  if (r.reward) out.Set("reward", Number(*r.reward));
  if (r.eval_reward) out.Set("eval_reward", Number(*r.eval_reward));
  JsonValue& views = out.Set("views", JsonValue::Array());
  for (const ViewJudgement& j : r.views) {
    JsonValue v = JsonValue::Object();
    v.Set("object_found", JsonValue::Bool(j.object_found));
    v.Set("shape", name(ShapeName(j.shape)));
    v.Set("shape_correct", JsonValue::Bool(j.shape_correct));
    v.Set("yaw_deg", Number(j.yaw * 180 / M_PI));
    v.Set("iou", Number(j.iou));
    JsonValue& ious = v.Set("shape_iou", JsonValue::Object());
    for (int s = 0; s < kNumShapes; ++s) {
      ious.Set(std::string(ShapeName(static_cast<Shape>(s))), Number(j.shape_iou[s]));
    }
    v.Set("mean_rgb", Triple(j.mean_rgb));
    v.Set("lab", Triple(j.lab));
    v.Set("delta_e", Number(j.delta_e));
    v.Set("nearest_color", name(ColorName(j.nearest_color)));
    v.Set("nearest_delta_e", Number(j.nearest_delta_e));
    v.Set("color_correct", JsonValue::Bool(j.color_correct));
    if (j.reward) v.Set("reward", Number(*j.reward));
    if (j.eval_reward) v.Set("eval_reward", Number(*j.eval_reward));
    views.Push(std::move(v));
  }
  return out;
}

}  // namespace psd3d::tinyworld
