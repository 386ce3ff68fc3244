#include "worker/tinyworld/world.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "worker/mesh/primitives.h"
#include "worker/tinyworld/tokenizer.h"

namespace psd3d::tinyworld {
namespace {

constexpr absl::string_view kShapeNames[kNumShapes] = {"cube", "sphere", "cylinder", "cone", "torus", "pyramid"};
constexpr absl::string_view kColorNames[kNumColors] = {"red",  "orange", "yellow", "green",
                                                       "blue", "purple", "pink",   "brown"};
// Mid-bright, saturated albedos; the darkest (brown, blue) stay distinguishable in shadow and the
// lightest (yellow, pink) stay clearly off the white background.
constexpr Rgb kColorRgb[kNumColors] = {
    {0.86f, 0.14f, 0.12f},  // red
    {0.96f, 0.52f, 0.08f},  // orange
    {0.95f, 0.85f, 0.15f},  // yellow
    {0.18f, 0.66f, 0.24f},  // green
    {0.15f, 0.32f, 0.86f},  // blue
    {0.55f, 0.22f, 0.75f},  // purple
    {0.96f, 0.48f, 0.72f},  // pink
    {0.50f, 0.30f, 0.14f},  // brown
};

}  // namespace

absl::string_view ShapeName(Shape shape) { return kShapeNames[static_cast<int>(shape)]; }
absl::string_view ColorName(Color color) { return kColorNames[static_cast<int>(color)]; }
Rgb ColorRgb(Color color) { return kColorRgb[static_cast<int>(color)]; }
bool YawMatters(Shape shape) { return shape == Shape::kCube || shape == Shape::kPyramid; }

const Mesh& ShapeMesh(Shape shape) {
  static std::once_flag once;
  static Mesh* meshes = nullptr;
  std::call_once(once, [] {
    meshes = new Mesh[kNumShapes]{CubeMesh(), SphereMesh(), CylinderMesh(), ConeMesh(), TorusMesh(), PyramidMesh()};
  });
  return meshes[static_cast<int>(shape)];
}

std::string SubjectName(const Subject& s) { return absl::StrCat(ColorName(s.color), " ", ShapeName(s.shape)); }

std::vector<Subject> AllSubjects() {
  std::vector<Subject> all;
  for (int c = 0; c < kNumColors; ++c)
    for (int s = 0; s < kNumShapes; ++s) all.push_back({static_cast<Color>(c), static_cast<Shape>(s)});
  return all;
}

bool IsHeldOut(const Subject& s) {
  static const Subject kHeldOut[] = {{Color::kRed, Shape::kTorus},       {Color::kBlue, Shape::kCone},
                                     {Color::kGreen, Shape::kPyramid},   {Color::kYellow, Shape::kCylinder},
                                     {Color::kPurple, Shape::kCube},     {Color::kOrange, Shape::kSphere}};
  for (const Subject& h : kHeldOut)
    if (h == s) return true;
  return false;
}

std::vector<Subject> SeenSubjects() {
  std::vector<Subject> out;
  for (const Subject& s : AllSubjects())
    if (!IsHeldOut(s)) out.push_back(s);
  return out;
}

std::vector<Subject> HeldOutSubjects() {
  std::vector<Subject> out;
  for (const Subject& s : AllSubjects())
    if (IsHeldOut(s)) out.push_back(s);
  return out;
}

int SubjectIndex(const Subject& s) { return static_cast<int>(s.color) * kNumShapes + static_cast<int>(s.shape); }

const std::vector<std::string>& PromptTemplates() {
  static const auto* templates = new std::vector<std::string>{
      "a {color} {shape}", "a photo of a {color} {shape}", "a {shape} that is {color}", "one {color} {shape}"};
  return *templates;
}

std::string MakePrompt(const Subject& s, int template_index) {
  const auto& t = PromptTemplates();
  TORCH_CHECK(template_index >= 0 && template_index < static_cast<int>(t.size()), "MakePrompt: template index ",
              template_index, " out of range");
  std::string prompt =
      absl::StrReplaceAll(t[template_index], {{"{color}", ColorName(s.color)}, {"{shape}", ShapeName(s.shape)}});
  // English articles: "an orange cube" (the tokenizer reads "an" as "a").
  for (size_t at = 0; (at = prompt.find("a ", at)) != std::string::npos; at += 2) {
    const bool word_start = at == 0 || prompt[at - 1] == ' ';
    if (word_start && at + 2 < prompt.size() && std::string("aeiou").find(prompt[at + 2]) != std::string::npos) {
      prompt.insert(at + 1, "n");
    }
  }
  return prompt;
}

absl::StatusOr<Subject> ParsePrompt(absl::string_view prompt) {
  // The tokenizer owns word splitting and the unknown-word error.
  const Tokenizer& tok = Tokenizer::TinyWorld();
  absl::StatusOr<std::vector<int64_t>> ids = tok.Encode(prompt);
  if (!ids.ok()) return ids.status();
  int color = -1, shape = -1;
  for (int64_t id : *ids) {
    if (id < 3) continue;
    const std::string& w = tok.words()[id - 3];
    for (int c = 0; c < kNumColors; ++c) {
      if (w != kColorNames[c]) continue;
      if (color >= 0 && color != c)
        return absl::InvalidArgumentError(absl::StrCat("prompt '", prompt, "' names two colors (",
                                                       kColorNames[color], " and ", w, "); the tiny world has one"));
      color = c;
    }
    for (int s = 0; s < kNumShapes; ++s) {
      if (w != kShapeNames[s]) continue;
      if (shape >= 0 && shape != s)
        return absl::InvalidArgumentError(absl::StrCat("prompt '", prompt, "' names two shapes (",
                                                       kShapeNames[shape], " and ", w, "); the tiny world has one"));
      shape = s;
    }
  }
  if (color < 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt '", prompt, "' names no color (one of red, orange, yellow, green, blue, purple, pink, brown)"));
  if (shape < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("prompt '", prompt, "' names no shape (one of cube, sphere, cylinder, cone, torus, pyramid)"));
  return Subject{static_cast<Color>(color), static_cast<Shape>(shape)};
}

}  // namespace psd3d::tinyworld
