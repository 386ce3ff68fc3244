// psd3d-tinyworld judge: the ground-truth judge (worker/tinyworld/judge.h) from the command line.
//   --judge_glb=mesh.glb --judge_prompt="a red cube"   renders the GLB from the 8 judge cameras and judges
//                                                      it in shared mode, with its floater share;
//   --judge_images=samples.safetensors                 judges images as `sample-prior` writes them
//                                                      (judge.h: "images", "elevation", "azimuth",
//                                                      "subject"), grouped by subject, per image by
//                                                      default (--judge_mode=shared for one object).
// Prints the JSON report on stdout (a summary line on stderr). With --judge_rewards, the pack's reward
// models ("reward", "reward_eval") score the images too when the pack has them.
#include "worker/tinyworld/judge.h"

#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/tinyworld/command.h"
#include "tools/tinyworld/pack_loading.h"
#include "worker/formats/safetensors.h"
#include "worker/tinyworld/tiny_reward.h"

ABSL_FLAG(std::string, judge_glb, "", "judge: a GLB file to render and judge (needs --judge_prompt)");
ABSL_FLAG(std::string, judge_images, "", "judge: a safetensors file of images, elevation, azimuth, subject");
ABSL_FLAG(std::string, judge_prompt, "",
          "judge: what the GLB should show, e.g. \"a red cube\"; for --judge_images it overrides the file's subjects");
ABSL_FLAG(std::string, judge_mode, "per_image", "judge: per_image or shared (yaw), for --judge_images");
ABSL_FLAG(int64_t, judge_yaw_steps, 12, "judge: yaws tried for cube and pyramid, in [0°, 90°)");
ABSL_FLAG(bool, judge_rewards, true, "judge: add the pack's reward scores when the pack has reward models");

namespace psd3d::tinyworld {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "judge: %s\n", status.ToString().c_str());
  return 1;
}

// The pack's reward models, when asked for and present (a missing one is a note, not an error).
std::vector<std::unique_ptr<TinyReward>> LoadRewards(const at::Device& device) {
  std::vector<std::unique_ptr<TinyReward>> out(2);
  if (!absl::GetFlag(FLAGS_judge_rewards)) return out;
  const char* keys[2] = {"reward", "reward_eval"};
  for (int i = 0; i < 2; ++i) out[i] = LoadOptionalReward(absl::GetFlag(FLAGS_pack), keys[i], device, "judge");
  return out;
}

absl::StatusOr<Subject> PromptSubject() {
  const std::string prompt = absl::GetFlag(FLAGS_judge_prompt);
  if (prompt.empty()) return absl::InvalidArgumentError("--judge_prompt is required here");
  return ParsePrompt(prompt);
}

// The tensor `key` of the file with `dims` dimensions and a floating (or int64) type.
absl::StatusOr<at::Tensor> Tensor(const SafetensorsFile& file, const char* key, int64_t dims, bool integer) {
  auto it = file.tensors.find(key);
  if (it == file.tensors.end()) return absl::InvalidArgumentError(absl::StrCat("no \"", key, "\" tensor"));
  const at::Tensor& t = it->second;
  const bool type_ok = integer ? t.scalar_type() == at::kLong : at::isFloatingType(t.scalar_type());
  if (t.dim() != dims || !type_ok) {
    return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" must be ", dims, "-D ", integer ? "int64" : "float",
                                                   ", got ", c10::str(t.sizes()), " ", c10::toString(t.scalar_type())));
  }
  return integer ? t : t.to(at::kFloat);
}

struct ImageSet {
  at::Tensor images, elevation, azimuth;  // [N,3,H,W], [N], [N]
  std::vector<Subject> subjects;          // N
};

absl::StatusOr<ImageSet> ReadImageSet(const std::string& path) {
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  if (!file.ok()) return file.status();
  ImageSet set;
  absl::StatusOr<at::Tensor> images = Tensor(*file, kJudgeImagesKey, 4, false);
  absl::StatusOr<at::Tensor> elevation = Tensor(*file, kJudgeElevationKey, 1, false);
  absl::StatusOr<at::Tensor> azimuth = Tensor(*file, kJudgeAzimuthKey, 1, false);
  for (const auto* t : {&images, &elevation, &azimuth}) {
    if (!t->ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", t->status().message()));
  }
  const int64_t n = images->size(0);
  if (n == 0 || images->size(1) != 3 || images->size(2) != images->size(3) || elevation->size(0) != n ||
      azimuth->size(0) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected images [N,3,S,S] with N ≥ 1 and elevation, azimuth [N]; got ",
                     c10::str(images->sizes()), ", ", c10::str(elevation->sizes()), ", ", c10::str(azimuth->sizes())));
  }
  set.images = *images;
  set.elevation = *elevation;
  set.azimuth = *azimuth;
  if (file->tensors.count(kJudgeSubjectKey) && absl::GetFlag(FLAGS_judge_prompt).empty()) {
    absl::StatusOr<at::Tensor> subject = Tensor(*file, kJudgeSubjectKey, 1, true);
    if (!subject.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", subject.status().message()));
    if (subject->size(0) != n) return absl::InvalidArgumentError(absl::StrCat(path, ": \"subject\" must be [", n, "]"));
    const std::vector<Subject> all = AllSubjects();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = (*subject)[i].item<int64_t>();
      if (s < 0 || s >= static_cast<int64_t>(all.size())) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": subject index ", s, " is not in [0, 48)"));
      }
      set.subjects.push_back(all[s]);
    }
  } else {
    absl::StatusOr<Subject> s = PromptSubject();
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, " has no \"subject\" tensor: ", s.status().message()));
    }
    set.subjects.assign(n, *s);
  }
  return set;
}

JudgeOptions Options(const std::vector<std::unique_ptr<TinyReward>>& rewards, const at::Device& device) {
  JudgeOptions options;
  options.yaw_steps = std::max<int64_t>(1, absl::GetFlag(FLAGS_judge_yaw_steps));
  options.device = device;
  options.reward = rewards[0].get();
  options.eval_reward = rewards[1].get();
  return options;
}

int JudgeGlbCommand(const at::Device& device) {
  absl::StatusOr<Subject> subject = PromptSubject();
  if (!subject.ok()) return Fail(subject.status());
  const auto rewards = LoadRewards(device);
  const std::string path = absl::GetFlag(FLAGS_judge_glb);
  absl::StatusOr<JudgeReport> report = JudgeGlb(path, *subject, Options(rewards, device));
  if (!report.ok()) return Fail(report.status());
  JsonValue json = ReportToJson(*report);
  json.Set("source", JsonValue::String(path));
  std::printf("%s\n", json.Dump().c_str());
  std::fprintf(stderr, "judge: %s: shape %s (%s), color %s (ΔE %.1f, threshold %.1f), floaters %.1f%%\n", path.c_str(),
               std::string(ShapeName(report->shape)).c_str(), report->shape_correct ? "right" : "wrong",
               report->color_correct ? "right" : "wrong", report->mean_delta_e, report->delta_e_threshold,
               100 * report->floater_share.value_or(0));
  return 0;
}

int JudgeImagesCommand(const at::Device& device) {
  const std::string path = absl::GetFlag(FLAGS_judge_images), mode_name = absl::GetFlag(FLAGS_judge_mode);
  if (mode_name != "per_image" && mode_name != "shared") {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--judge_mode must be per_image or shared, got ", mode_name)));
  }
  const JudgeMode mode = mode_name == "shared" ? JudgeMode::kShared : JudgeMode::kPerImage;
  absl::StatusOr<ImageSet> set = ReadImageSet(path);
  if (!set.ok()) return Fail(set.status());
  const auto rewards = LoadRewards(device);
  JudgeOptions options = Options(rewards, device);
  options.render.size = set->images.size(2);

  // Subjects in order of first appearance, each with its images.
  std::vector<Subject> order;
  std::map<int, std::vector<int64_t>> members;
  for (int64_t i = 0; i < static_cast<int64_t>(set->subjects.size()); ++i) {
    const int key = SubjectIndex(set->subjects[i]);
    if (!members.count(key)) order.push_back(set->subjects[i]);
    members[key].push_back(i);
  }
  JsonValue groups = JsonValue::Array();
  double images = 0, shape_right = 0, color_right = 0, delta_e = 0, iou = 0;
  for (const Subject& s : order) {
    const at::Tensor idx = at::tensor(members[SubjectIndex(s)], at::kLong);
    const CameraBatch cameras =
        WorldCameras(set->elevation.index_select(0, idx).to(device), set->azimuth.index_select(0, idx).to(device));
    absl::StatusOr<JudgeReport> r = JudgeImages(set->images.index_select(0, idx), cameras, s, mode, options);
    if (!r.ok()) return Fail(absl::Status(r.status().code(), absl::StrCat(path, ": ", r.status().message())));
    const double v = static_cast<double>(r->views.size());
    images += v;
    shape_right += r->shape_accuracy * v;
    color_right += r->color_accuracy * v;
    delta_e += r->mean_delta_e * v;
    iou += r->mean_expected_iou * v;
    groups.Push(ReportToJson(*r));
  }
  JsonValue summary = JsonValue::Object();
  summary.Set("images", JsonValue::Int(static_cast<int64_t>(images)));
  summary.Set("shape_accuracy", JsonValue::Double(shape_right / images));
  summary.Set("color_accuracy", JsonValue::Double(color_right / images));
  summary.Set("mean_delta_e", JsonValue::Double(delta_e / images));
  summary.Set("mean_expected_iou", JsonValue::Double(iou / images));
  summary.Set("delta_e_threshold", JsonValue::Double(PaletteThreshold().delta_e));
  JsonValue json = JsonValue::Object();
  json.Set("source", JsonValue::String(path));
  json.Set("mode", JsonValue::String(std::string(JudgeModeName(mode))));
  json.Set("summary", std::move(summary));
  json.Set("subjects", std::move(groups));
  std::printf("%s\n", json.Dump().c_str());
  std::fprintf(stderr, "judge: %s: %d images of %zu subjects: shape %.1f%%, color %.1f%%, mean ΔE %.1f\n", path.c_str(),
               static_cast<int>(images), order.size(), 100 * shape_right / images, 100 * color_right / images,
               delta_e / images);
  return 0;
}

int JudgeCommand() {
  const bool glb = !absl::GetFlag(FLAGS_judge_glb).empty(), images = !absl::GetFlag(FLAGS_judge_images).empty();
  if (glb == images) return Fail(absl::InvalidArgumentError("give exactly one of --judge_glb and --judge_images"));
  const at::Device device = FlagDevice();
  return glb ? JudgeGlbCommand(device) : JudgeImagesCommand(device);
}

PSD3D_TINYWORLD_COMMAND("judge",
                        "judge a GLB (--judge_glb, --judge_prompt) or sampled images (--judge_images); JSON on stdout",
                        JudgeCommand);

}  // namespace
}  // namespace psd3d::tinyworld
