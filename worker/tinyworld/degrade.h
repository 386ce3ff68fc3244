// Graded degradations of tiny-world renders and the preference pairs the reward models learn from
// (docs/tiny-world.md, "The reward"): a clean, correct render beats a degraded one, and of two renders
// degraded the same way, the milder beats the stronger.
//
// Severity s ∈ (0,1] grades every degradation; even the mildest (s → 0) is clearly visible at 64×64,
// so a good reward can rank every pair. Scene degradations change what is rendered (wrong color or
// shape, floaters, framing); image degradations post-process a clean render (blur, noise, color).
// Their random choices are explicit inputs (DegradeNoise, noise tensors), so the same choices at two
// severities give the same degradation at two strengths: the graded pairs differ in severity alone.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/world.h"

namespace psd3d::tinyworld {

enum class Degradation {
  kWrongColor,     // scene: albedo moved in CIELAB from the prompt's color toward another palette color
  kWrongShape,     // scene: another of the 6 primitives (shapes do not blend: severity is ignored)
  kFloaters,       // scene: 1–6 small stray spheres and cubes around the subject, more and bigger with s
  kOffCenter,      // scene: the subject moved sideways in the image plane
  kCropped,        // scene: the subject scaled up until it leaves the frame
  kBlur,           // image: Gaussian blur, σ from 0.7 to 2.5 px (at 64×64)
  kSpeckle,        // image: additive Gaussian pixel noise, σ from 0.05 to 0.20
  kWashedOut,      // image: desaturated and pulled toward white
  kOverSaturated,  // image: saturation and contrast pushed until colors clip
};
inline constexpr int kNumDegradations = 9;

std::vector<Degradation> AllDegradations();
absl::string_view DegradationName(Degradation kind);  // "wrong_color", "over_saturated", …
// INVALID_ARGUMENT naming the unknown name and listing the known ones.
absl::StatusOr<Degradation> ParseDegradation(absl::string_view name);
bool IsSceneDegradation(Degradation kind);
// Whether severity changes the result (all but wrong shape); graded pairs use only these.
bool HasGrades(Degradation kind);

// The random choices of one scene degradation, uniforms in [0,1) (which other color or shape, floater
// placement, the direction of an offset).
struct DegradeNoise {
  std::array<float, 32> u{};
};
DegradeNoise DrawDegradeNoise(at::Generator& generator);

// The scene of `subject` at `yaw`, degraded by a scene degradation of severity s ∈ (0,1], for a camera at
// `camera_position` (world): offsets and floaters are placed in its image plane, so they stay visible.
Scene DegradedScene(const Subject& subject, float yaw, Degradation kind, float severity, const DegradeNoise& noise,
                    const std::array<float, 3>& camera_position);

// Image degradations of a batch: images [B,3,H,W] in [0,1] (white background), severity [B] in (0,1] on
// the images' device; results stay in [0,1]. `noise` (speckle only) is standard normal [B,3,H,W].
at::Tensor BlurImages(const at::Tensor& images, const at::Tensor& severity);
at::Tensor SpeckleImages(const at::Tensor& images, const at::Tensor& severity, const at::Tensor& noise);
at::Tensor WashOutImages(const at::Tensor& images, const at::Tensor& severity);
at::Tensor OverSaturateImages(const at::Tensor& images, const at::Tensor& severity);
// Dispatches to the four above; `noise` may be undefined for kinds other than speckle.
at::Tensor DegradeImages(const at::Tensor& images, Degradation kind, const at::Tensor& severity,
                         const at::Tensor& noise = {});

struct PairOptions {
  std::vector<Subject> subjects = AllSubjects();
  std::vector<int> templates = {0, 1, 2, 3};  // indices into PromptTemplates()
  std::vector<Degradation> kinds = AllDegradations();
  // Share of pairs where both images carry the same degradation and the milder wins (kinds with
  // grades only); the rest pit a clean render against a degraded one.
  double graded_fraction = 0.25;
  double min_severity_gap = 0.3;  // graded pairs: s_loser − s_winner ≥ this
  // Clean-vs-degraded pairs: share where the loser is seen from the winner's camera and yaw (otherwise
  // an independent view, so scores must be comparable across views). Graded pairs always share it.
  double same_view_fraction = 0.5;
  RenderOptions render;
};

// One batch of pairs, all for the same prompt pairwise (winner i and loser i answer prompts[i]).
struct PreferencePairs {
  at::Tensor winners;     // [B,3,S,S] on the device
  at::Tensor losers;      // [B,3,S,S] on the device
  at::Tensor prompt_ids;  // [B,L] int64 token ids (Tokenizer::TinyWorld()) on the device
  std::vector<std::string> prompts;
  std::vector<Subject> subjects;
  std::vector<Degradation> kinds;  // the loser's (and, for graded pairs, the winner's) degradation
  at::Tensor winner_severity;      // [B] float CPU; 0 for a clean winner
  at::Tensor loser_severity;       // [B] float CPU
  int64_t size() const { return static_cast<int64_t>(prompts.size()); }
};

// Seed of batch `index` of pair stream `stream` in a run seeded `seed` (SplitMix64 mixing). Training,
// metric and evaluation pairs come from different streams, so no evaluation pair was trained on, and a
// resumed run redraws exactly the batches it would have drawn.
uint64_t PairStreamSeed(uint64_t seed, uint64_t stream, uint64_t index);

// `count` fresh pairs rendered on `device`; deterministic for a given generator state (a CPU generator:
// every random choice, noise included, is drawn on the CPU, so devices agree up to rendering).
PreferencePairs MakePreferencePairs(int64_t count, const PairOptions& options, at::Generator& generator,
                                    const at::Device& device);

}  // namespace psd3d::tinyworld
