#include "worker/tinyworld/degrade.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/render/color_space.h"
#include "worker/tinyworld/tokenizer.h"

namespace psd3d::tinyworld {
namespace {

constexpr absl::string_view kNames[kNumDegradations] = {"wrong_color", "wrong_shape", "floaters",
                                                        "off_center",  "cropped",     "blur",
                                                        "speckle",     "washed_out",  "over_saturated"};

// Severity → strength of each degradation. The minimum (s → 0) is what a viewer still notices at 64×64.
float WrongColorMix(float s) { return 0.35f + 0.65f * s; }        // share of the way to the other color in CIELAB
int FloaterCount(float s) { return 1 + std::min(5, static_cast<int>(s * 6)); }
float FloaterScale(float s) { return 0.12f + 0.14f * s; }          // × the primitive (bounding radius ≈ 0.9)
float OffCenterShift(float s) { return 0.2f + 0.45f * s; }         // world units in the image plane
float CropScale(float s) { return 1.45f + 0.9f * s; }              // the frame's half-height at the origin is 1.24
// Image degradations: parameter = base + range · s, applied per image.
constexpr double kBlurSigma[2] = {0.7, 1.8};  // pixels at 64×64
constexpr int64_t kBlurRadius = 8;            // ≥ 3σ at s = 1
constexpr double kSpeckleSigma[2] = {0.05, 0.15};
constexpr double kWashAmount[2] = {0.3, 0.5};       // share of the way to gray (and 0.7 of it toward white)
constexpr double kSaturationGain[2] = {1.6, 1.4};   // chroma × this
constexpr double kContrastGain[2] = {1.0, 0.4};     // around mid-gray

// Index into n choices from a uniform in [0,1).
int Pick(float u, int n) { return std::min(n - 1, static_cast<int>(u * n)); }

// `length` along the direction at `angle` in the image plane of a camera at `camera` looking at the origin.
std::array<float, 3> ImagePlaneOffset(const std::array<float, 3>& camera, float angle, float length) {
  const double n = std::sqrt(camera[0] * camera[0] + camera[1] * camera[1] + camera[2] * camera[2]);
  const double f[3] = {-camera[0] / n, -camera[1] / n, -camera[2] / n};
  double r[3] = {-f[2], 0, f[0]};  // forward × (0,1,0)
  double rn = std::sqrt(r[0] * r[0] + r[2] * r[2]);
  if (rn < 1e-6) r[0] = 1, r[2] = 0, rn = 1;  // looking straight up or down: any horizontal axis
  for (double& x : r) x /= rn;
  const double up[3] = {r[1] * f[2] - r[2] * f[1], r[2] * f[0] - r[0] * f[2], r[0] * f[1] - r[1] * f[0]};
  const double c = std::cos(angle) * length, s = std::sin(angle) * length;
  return {static_cast<float>(c * r[0] + s * up[0]), static_cast<float>(c * r[1] + s * up[1]),
          static_cast<float>(c * r[2] + s * up[2])};
}

Rgb ShiftedColor(Color color, float severity, float u) {
  int k = Pick(u, kNumColors - 1);
  if (k >= static_cast<int>(color)) ++k;  // any palette color but the subject's
  const ColorTriple a = ColorToLab(ColorRgb(color)), b = ColorToLab(ColorRgb(static_cast<Color>(k)));
  const float t = WrongColorMix(severity);
  ColorTriple lab;
  for (int i = 0; i < 3; ++i) lab[i] = a[i] + t * (b[i] - a[i]);
  ColorTriple rgb = LabToColor(lab);
  for (float& x : rgb) x = std::clamp(x, 0.0f, 1.0f);
  return rgb;
}

// Floaters j = 0, 1, … alternate spheres and cubes on a ring around the subject in the camera's image
// plane (just outside its silhouette, inside the frame), a little in front of or behind the origin: a
// floater hidden behind the subject or outside the frame would make an unlearnable pair.
void AddFloaters(Scene* scene, float severity, const DegradeNoise& noise, const std::array<float, 3>& camera) {
  const int count = FloaterCount(severity);
  const double n = std::sqrt(camera[0] * camera[0] + camera[1] * camera[1] + camera[2] * camera[2]);
  for (int j = 0; j < count; ++j) {
    const float* u = &noise.u[1 + 5 * j];
    const std::array<float, 3> ring = ImagePlaneOffset(camera, static_cast<float>(2 * M_PI * u[0]), 0.9f + 0.2f * u[1]);
    const double depth = 0.6 * (u[2] - 0.5);  // toward the camera
    SceneObject o;
    o.shape = j % 2 == 0 ? Shape::kSphere : Shape::kCube;
    o.rgb = ColorRgb(static_cast<Color>(Pick(u[4], kNumColors)));
    o.yaw = static_cast<float>(2 * M_PI * u[3]);
    o.scale = FloaterScale(severity) * (0.75f + 0.5f * u[3]);
    for (int k = 0; k < 3; ++k) o.offset[k] = static_cast<float>(ring[k] + depth * camera[k] / n);
    scene->objects.push_back(o);
  }
}

// [B,1,1,1] view of a per-image parameter.
at::Tensor PerImage(const at::Tensor& v) { return v.view({-1, 1, 1, 1}); }

// Rec. 709 luma of sRGB values [B,1,H,W] (a perceptual gray for desaturation; no linearization needed).
at::Tensor Luma(const at::Tensor& images) {
  at::Tensor w = at::tensor({0.2126f, 0.7152f, 0.0722f}).to(images.options()).view({1, 3, 1, 1});
  return (images * w).sum(1, /*keepdim=*/true);
}

void CheckBatch(const at::Tensor& images, const at::Tensor& severity, const char* what) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, what, ": images must be [B,3,H,W], got ", images.sizes());
  TORCH_CHECK(severity.dim() == 1 && severity.size(0) == images.size(0), what, ": severity must be [B], got ",
              severity.sizes());
}

// Columns of the per-pair table of uniforms MakePreferencePairs draws.
enum Column {
  kSubjectCol, kTemplateCol, kKindCol, kGradedCol, kSeverityCol, kSeverity2Col, kSameViewCol,
  kWinnerViewCol,                 // elevation, azimuth, yaw
  kLoserViewCol = kWinnerViewCol + 3,
  kNoiseCol = kLoserViewCol + 3,  // DegradeNoise
  kColumns = kNoiseCol + 32,
};

struct View {
  float elevation, azimuth, yaw;
  std::array<float, 3> position;
};

View ViewFrom(const float* u) {
  constexpr double kDeg = M_PI / 180.0;
  View v;
  v.elevation = static_cast<float>((kElevationMinDeg + u[0] * (kElevationMaxDeg - kElevationMinDeg)) * kDeg);
  v.azimuth = static_cast<float>(2 * M_PI * u[1]);
  v.yaw = static_cast<float>(2 * M_PI * u[2]);
  const double ce = std::cos(v.elevation);
  v.position = {static_cast<float>(kCameraDistance * ce * std::sin(v.azimuth)),
                static_cast<float>(kCameraDistance * std::sin(v.elevation)),
                static_cast<float>(kCameraDistance * ce * std::cos(v.azimuth))};
  return v;
}

Scene SceneFor(const Subject& subject, const View& view, Degradation kind, float severity, const DegradeNoise& noise) {
  if (severity > 0 && IsSceneDegradation(kind)) return DegradedScene(subject, view.yaw, kind, severity, noise, view.position);
  return SubjectScene(subject, view.yaw);
}

}  // namespace

std::vector<Degradation> AllDegradations() {
  std::vector<Degradation> all;
  for (int k = 0; k < kNumDegradations; ++k) all.push_back(static_cast<Degradation>(k));
  return all;
}

absl::string_view DegradationName(Degradation kind) { return kNames[static_cast<int>(kind)]; }

absl::StatusOr<Degradation> ParseDegradation(absl::string_view name) {
  for (int k = 0; k < kNumDegradations; ++k)
    if (kNames[k] == name) return static_cast<Degradation>(k);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown degradation '", name, "' (known: ", absl::StrJoin(kNames, ", "), ")"));
}

bool IsSceneDegradation(Degradation kind) { return static_cast<int>(kind) <= static_cast<int>(Degradation::kCropped); }
bool HasGrades(Degradation kind) { return kind != Degradation::kWrongShape; }

DegradeNoise DrawDegradeNoise(at::Generator& generator) {
  at::Tensor u = at::rand({32}, generator, at::TensorOptions().dtype(at::kFloat));
  DegradeNoise noise;
  std::copy(u.data_ptr<float>(), u.data_ptr<float>() + 32, noise.u.begin());
  return noise;
}

Scene DegradedScene(const Subject& subject, float yaw, Degradation kind, float severity, const DegradeNoise& noise,
                    const std::array<float, 3>& camera_position) {
  TORCH_CHECK(IsSceneDegradation(kind), "DegradedScene: ", DegradationName(kind), " is an image degradation");
  TORCH_CHECK(severity > 0 && severity <= 1, "DegradedScene: severity ", severity, " outside (0,1]");
  Scene scene = SubjectScene(subject, yaw);
  SceneObject& o = scene.objects[0];
  const auto& u = noise.u;
  switch (kind) {
    case Degradation::kWrongColor:
      o.rgb = ShiftedColor(subject.color, severity, u[0]);
      break;
    case Degradation::kWrongShape:
      o.shape = static_cast<Shape>((static_cast<int>(subject.shape) + 1 + Pick(u[0], kNumShapes - 1)) % kNumShapes);
      break;
    case Degradation::kFloaters:
      AddFloaters(&scene, severity, noise, camera_position);
      break;
    case Degradation::kOffCenter:
      o.offset = ImagePlaneOffset(camera_position, static_cast<float>(2 * M_PI * u[0]), OffCenterShift(severity));
      break;
    case Degradation::kCropped:
      o.scale = CropScale(severity);
      o.offset = ImagePlaneOffset(camera_position, static_cast<float>(2 * M_PI * u[0]), 0.4f * severity * u[1]);
      break;
    default:
      break;
  }
  return scene;
}

at::Tensor BlurImages(const at::Tensor& images, const at::Tensor& severity) {
  CheckBatch(images, severity, "BlurImages");
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  at::Tensor x = at::arange(-kBlurRadius, kBlurRadius + 1, images.options());
  at::Tensor sigma = (kBlurSigma[0] + kBlurSigma[1] * severity.to(images.options())).view({b, 1});
  at::Tensor k = at::exp(-(x * x).view({1, -1}) / (2 * sigma * sigma));
  k = (k / k.sum(1, /*keepdim=*/true)).unsqueeze(1).expand({b, c, k.size(1)}).reshape({b * c, 1, 1, -1});
  // Each image channel is its own conv group; the white padding continues the background.
  at::Tensor img = at::constant_pad_nd(images.reshape({1, b * c, h, w}), {kBlurRadius, kBlurRadius, kBlurRadius, kBlurRadius}, 1.0);
  img = at::conv2d(img, k, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, b * c);
  img = at::conv2d(img, k.view({b * c, 1, -1, 1}), at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0},
                   at::IntArrayRef{1, 1}, b * c);
  return img.view({b, c, h, w});
}

at::Tensor SpeckleImages(const at::Tensor& images, const at::Tensor& severity, const at::Tensor& noise) {
  CheckBatch(images, severity, "SpeckleImages");
  TORCH_CHECK(noise.defined() && noise.sizes() == images.sizes(), "SpeckleImages: noise must be shaped like the images");
  at::Tensor sigma = PerImage(kSpeckleSigma[0] + kSpeckleSigma[1] * severity.to(images.options()));
  return at::clamp(images + sigma * noise.to(images.options()), 0, 1);
}

at::Tensor WashOutImages(const at::Tensor& images, const at::Tensor& severity) {
  CheckBatch(images, severity, "WashOutImages");
  at::Tensor a = PerImage(kWashAmount[0] + kWashAmount[1] * severity.to(images.options()));
  at::Tensor gray = images + (Luma(images) - images) * a;  // desaturate
  return at::clamp(gray + (1 - gray) * (0.7 * a), 0, 1);  // and fade toward white
}

at::Tensor OverSaturateImages(const at::Tensor& images, const at::Tensor& severity) {
  CheckBatch(images, severity, "OverSaturateImages");
  at::Tensor s = PerImage(severity.to(images.options()));
  at::Tensor luma = Luma(images);
  at::Tensor vivid = luma + (images - luma) * (kSaturationGain[0] + kSaturationGain[1] * s);
  return at::clamp(0.5 + (vivid - 0.5) * (kContrastGain[0] + kContrastGain[1] * s), 0, 1);
}

at::Tensor DegradeImages(const at::Tensor& images, Degradation kind, const at::Tensor& severity, const at::Tensor& noise) {
  switch (kind) {
    case Degradation::kBlur:
      return BlurImages(images, severity);
    case Degradation::kSpeckle:
      return SpeckleImages(images, severity, noise);
    case Degradation::kWashedOut:
      return WashOutImages(images, severity);
    case Degradation::kOverSaturated:
      return OverSaturateImages(images, severity);
    default:
      TORCH_CHECK(false, "DegradeImages: ", DegradationName(kind), " is a scene degradation");
  }
}

uint64_t PairStreamSeed(uint64_t seed, uint64_t stream, uint64_t index) {
  auto mix = [](uint64_t x) {  // SplitMix64's finalizer
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  return mix(mix(mix(seed) ^ stream) ^ index);
}

PreferencePairs MakePreferencePairs(int64_t count, const PairOptions& options, at::Generator& generator,
                                    const at::Device& device) {
  TORCH_CHECK(count > 0, "MakePreferencePairs: count must be positive");
  TORCH_CHECK(!options.subjects.empty() && !options.templates.empty() && !options.kinds.empty(),
              "MakePreferencePairs: subjects, templates and kinds must not be empty");
  const auto cpu_float = at::TensorOptions().dtype(at::kFloat);
  at::Tensor table = at::rand({count, kColumns}, generator, cpu_float);
  auto u = table.accessor<float, 2>();

  PreferencePairs pairs;
  std::vector<Scene> scenes(2 * count);  // winners, then losers
  std::vector<float> elevation(2 * count), azimuth(2 * count), winner_severity(count), loser_severity(count);
  const float gap = static_cast<float>(std::clamp(options.min_severity_gap, 0.0, 0.9));
  for (int64_t i = 0; i < count; ++i) {
    const Subject subject = options.subjects[Pick(u[i][kSubjectCol], static_cast<int>(options.subjects.size()))];
    const int templ = options.templates[Pick(u[i][kTemplateCol], static_cast<int>(options.templates.size()))];
    const Degradation kind = options.kinds[Pick(u[i][kKindCol], static_cast<int>(options.kinds.size()))];
    const bool graded = HasGrades(kind) && u[i][kGradedCol] < options.graded_fraction;
    float s_win = 0, s_lose = 1 - u[i][kSeverityCol];  // (0,1]
    if (graded) {
      s_win = std::max(0.02f, u[i][kSeverityCol] * (1 - gap));
      s_lose = std::min(1.0f, s_win + gap + u[i][kSeverity2Col] * (1 - gap - s_win));
    }
    const bool same_view = graded || u[i][kSameViewCol] < options.same_view_fraction;
    const View vw = ViewFrom(&u[i][kWinnerViewCol]);
    const View vl = same_view ? vw : ViewFrom(&u[i][kLoserViewCol]);
    DegradeNoise noise;
    for (int j = 0; j < 32; ++j) noise.u[j] = u[i][kNoiseCol + j];

    scenes[i] = SceneFor(subject, vw, kind, s_win, noise);
    scenes[count + i] = SceneFor(subject, vl, kind, s_lose, noise);
    elevation[i] = vw.elevation, azimuth[i] = vw.azimuth;
    elevation[count + i] = vl.elevation, azimuth[count + i] = vl.azimuth;
    winner_severity[i] = s_win, loser_severity[i] = s_lose;
    pairs.prompts.push_back(MakePrompt(subject, templ));
    pairs.subjects.push_back(subject);
    pairs.kinds.push_back(kind);
  }
  pairs.winner_severity = at::tensor(winner_severity);
  pairs.loser_severity = at::tensor(loser_severity);

  CameraBatch cameras = WorldCameras(at::tensor(elevation).to(device), at::tensor(azimuth).to(device));
  at::Tensor images = RenderScenes(scenes, cameras, options.render);
  pairs.winners = images.narrow(0, 0, count);
  pairs.losers = images.narrow(0, count, count);

  // Image degradations, one batched call per kind; graded pairs share their speckle noise.
  for (Degradation kind : AllDegradations()) {
    if (IsSceneDegradation(kind)) continue;
    std::vector<int64_t> members, graded_rows;  // pair indices; rows of `members` whose winner is degraded too
    for (int64_t i = 0; i < count; ++i) {
      if (pairs.kinds[i] != kind) continue;
      if (winner_severity[i] > 0) graded_rows.push_back(static_cast<int64_t>(members.size()));
      members.push_back(i);
    }
    if (members.empty()) continue;
    const int64_t n = static_cast<int64_t>(members.size());
    at::Tensor noise;
    if (kind == Degradation::kSpeckle)
      noise = at::randn({n, 3, options.render.size, options.render.size}, generator, cpu_float).to(device);
    at::Tensor idx = at::tensor(members, at::kLong);
    at::Tensor idx_d = idx.to(device);
    pairs.losers.index_copy_(0, idx_d, DegradeImages(pairs.losers.index_select(0, idx_d), kind,
                                                     pairs.loser_severity.index_select(0, idx).to(device), noise));
    if (graded_rows.empty()) continue;
    at::Tensor rows = at::tensor(graded_rows, at::kLong);
    at::Tensor widx = idx.index_select(0, rows), widx_d = widx.to(device);
    pairs.winners.index_copy_(
        0, widx_d,
        DegradeImages(pairs.winners.index_select(0, widx_d), kind, pairs.winner_severity.index_select(0, widx).to(device),
                      noise.defined() ? noise.index_select(0, rows.to(device)) : at::Tensor()));
  }

  absl::StatusOr<at::Tensor> ids = Tokenizer::TinyWorld().EncodeBatch(pairs.prompts);
  TORCH_CHECK(ids.ok(), "MakePreferencePairs: ", ids.status().ToString());
  pairs.prompt_ids = ids->to(device);
  return pairs;
}

}  // namespace psd3d::tinyworld
