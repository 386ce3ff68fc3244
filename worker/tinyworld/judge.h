// The tiny world's judge (docs/tiny-world.md): ground-truth metrics, never used for optimization. It
// judges images of one subject (the prior's samples, or renders of an exported mesh) against what the
// prompt asked for:
//  - object mask: pixels whose darkest channel is at least MaskThreshold() below white;
//  - shape: for each of the 6 shapes, the silhouette IoU between the mask and RenderSilhouettes of the
//    shape from the same camera (coverage ≥ ½), maximized over yaw for shapes whose renders depend on
//    it (cube and pyramid: 4-fold symmetric, so yaws in [0°, 90°)); the best shape is the argmax. Per
//    image, each image gets its own yaw (the prior's independent samples); shared, one yaw per shape
//    holds for all views (one object: a mesh);
//  - color: the mean color over the mask eroded by one pixel (antialiased edge pixels left out), in
//    CIELAB, against a reference: the same measure on RenderScenes of the expected color with the
//    judged shape and yaw from the same camera, so shading is accounted for. ΔE76; the color is right
//    when ΔE < PaletteThreshold().delta_e, half the smallest ΔE between two palette colors'
//    references, so that under it the nearest palette color is the right one. The nearest palette
//    color (by ΔE to each color's reference) is reported too;
//  - floaters (meshes): the share of surface area outside the largest connected component;
//  - optionally the scores of reward models (the reward and the evaluation reward).
//
// A view without any object pixel is judged wrong in shape and color (its mean color is white).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/formats/json_lite.h"
#include "worker/mesh/mesh.h"
#include "worker/models/reward_model.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/world.h"

namespace psd3d::tinyworld {

enum class JudgeMode {
  kPerImage,  // each view its own yaw: independent samples of the prior
  kShared,    // one yaw for all views of one object: a mesh
};
absl::string_view JudgeModeName(JudgeMode mode);  // "per_image", "shared"

struct JudgeOptions {
  // Yaws tried for cube and pyramid, evenly spaced in [0°, 90°).
  int64_t yaw_steps = 12;
  // Size and antialiasing of silhouettes and references; `size` must be the images' size.
  RenderOptions render;
  // Where JudgeMesh renders (JudgeImages works on the cameras' device).
  at::Device device = at::kCPU;
  // Optional reward models whose scores (of the images for MakePrompt(expected)) the report carries.
  RewardModel* reward = nullptr;
  RewardModel* eval_reward = nullptr;
};

// The judgement of one view.
struct ViewJudgement {
  bool object_found = false;   // the mask has at least one pixel
  Shape shape = Shape::kCube;  // the best shape
  bool shape_correct = false;
  double yaw = 0;                              // the best shape's yaw (radians)
  double iou = 0;                              // the best shape's IoU
  std::array<double, kNumShapes> shape_iou{};  // every shape's IoU (at its yaw for this mode)
  Rgb mean_rgb{};                              // mean object color, sRGB
  Rgb lab{};                                   // the same in CIELAB
  double delta_e = 0;                          // ΔE76 to the expected color's reference
  Color nearest_color = Color::kRed;
  double nearest_delta_e = 0;
  bool color_correct = false;  // delta_e < the palette threshold
  std::optional<double> reward, eval_reward;
};

// The judgement of all views of one subject, with aggregates over views.
struct JudgeReport {
  Subject expected{};
  JudgeMode mode = JudgeMode::kPerImage;
  std::vector<ViewJudgement> views;
  Shape shape = Shape::kCube;         // argmax over shapes of the mean IoU over views
  bool shape_correct = false;         // shape == expected (and some view has an object)
  double shape_accuracy = 0;          // share of views whose shape is correct
  double mean_iou = 0;                // mean IoU of each view's best shape
  double mean_expected_iou = 0;       // mean IoU of the expected shape
  Color nearest_color = Color::kRed;  // argmin over colors of the mean ΔE over views
  bool color_correct = false;         // mean_delta_e < delta_e_threshold
  double color_accuracy = 0;          // share of views whose color is correct
  double mean_delta_e = 0;
  double delta_e_threshold = 0;               // PaletteThreshold().delta_e
  std::optional<double> floater_share;        // meshes only
  std::optional<double> reward, eval_reward;  // means over views
};

// The palette's "right color" threshold: half the smallest ΔE76 between the references of two palette
// colors, over the judge's 8 cameras and the 6 shapes (yaw 0), with the pair that sets it. Computed once
// on the CPU (96 renders, ~1 s) and cached. Since ΔE76 is a metric, an image within it of its color's
// reference is nearer to that reference than to any other palette color's.
struct PaletteThresholdInfo {
  double delta_e = 0;
  Color a = Color::kRed, b = Color::kRed;
  Shape shape = Shape::kCube;
  int view = 0;
};
const PaletteThresholdInfo& PaletteThreshold();

// The mask threshold on the distance from white (1 − the darkest channel): half the smallest such
// distance of any palette albedo fully lit. A pixel of coverage α over white is α·(1 − albedo) away
// from it, so for the palette's lightest color the mask is the coverage-½ silhouette, like the
// silhouettes it is compared with, and darker colors keep more of their edge; the prior's background
// noise (a few hundredths) stays far below.
double MaskThreshold();

// Object masks [V,H,W] (bool) of images [V,3,H,W].
at::Tensor ObjectMask(const at::Tensor& images);

// Judges images of one subject from cameras with reusable work: silhouettes of every shape and yaw for
// the cameras are rendered once, and palette references per (view, shape, yaw) are cached, so judging
// many subjects from the same cameras (eval-prior: 48 prompts × the 8 judge cameras) stays cheap.
class Judge {
 public:
  Judge(const CameraBatch& cameras, const JudgeOptions& options = {});

  // `images` [V,3,H,W] float sRGB in [0,1], V = the cameras' count, H = W = options.render.size.
  // INVALID_ARGUMENT for other shapes or non-finite values.
  absl::StatusOr<JudgeReport> JudgeImages(const at::Tensor& images, const Subject& expected, JudgeMode mode);

  const CameraBatch& cameras() const { return cameras_; }

 private:
  const at::Tensor& Silhouettes(Shape shape);  // [Y,V,H,W] bool
  at::Tensor Yaws(Shape shape) const;          // [Y] radians
  // Lab [V,8,3] of the palette references at each view's (shape, yaw index).
  at::Tensor PaletteLab(const std::vector<Shape>& shapes, const std::vector<int64_t>& yaw_index);

  CameraBatch cameras_;
  JudgeOptions options_;
  std::map<Shape, at::Tensor> silhouettes_;
  std::map<std::tuple<int64_t, Shape, int64_t>, at::Tensor> palette_lab_;  // (view, shape, yaw index) → [8,3]
};

// One-off JudgeImages (a Judge for these cameras).
absl::StatusOr<JudgeReport> JudgeImages(const at::Tensor& images, const CameraBatch& cameras, const Subject& expected,
                                        JudgeMode mode, const JudgeOptions& options = {});

// Renders `mesh` (vertex colors or a texture) with RenderMesh from JudgeCameras(options.device) and
// judges it in shared mode, with its floater share. INVALID_ARGUMENT for a mesh that fails
// ValidateMesh, is empty or has neither colors nor a texture.
absl::StatusOr<JudgeReport> JudgeMesh(const Mesh& mesh, const Subject& expected, const JudgeOptions& options = {});
// ReadGlb (worker/formats/glb_reader.h), then JudgeMesh.
absl::StatusOr<JudgeReport> JudgeGlb(const std::string& path, const Subject& expected,
                                     const JudgeOptions& options = {});

// Vertices merged by position (quantized to 1e-6 of the bounding box's largest side), faces reindexed;
// attributes dropped. Render meshes (and textured exports) duplicate vertices along creases and UV
// seams, which would split one surface into several "components".
Mesh WeldVertices(const Mesh& mesh);
// Share of surface area outside the largest vertex-connected component, after WeldVertices: 0 for one
// piece; 0 for a mesh without area.
double FloaterShare(const Mesh& mesh);

// The report as JSON: {"subject", "mode", aggregates…, "views": [...]}; colors and shapes by name.
JsonValue ReportToJson(const JudgeReport& report);

// Files the `judge` tool reads (--judge_images; `sample-prior` writes them): a safetensors file with
// "images" [N,3,H,W] float (sRGB in [0,1]), "elevation" [N] and "azimuth" [N] float radians (world
// cameras: WorldCameras), and "subject" [N] int64 SubjectIndex of what each image was asked to show.
inline constexpr char kJudgeImagesKey[] = "images";
inline constexpr char kJudgeElevationKey[] = "elevation";
inline constexpr char kJudgeAzimuthKey[] = "azimuth";
inline constexpr char kJudgeSubjectKey[] = "subject";

}  // namespace psd3d::tinyworld
