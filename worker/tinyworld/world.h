// The tiny world (docs/tiny-world.md): one primitive per scene in one of 8 flat colors, described by a
// prompt from a few templates. This module is the world's ground truth: shapes, palette, prompts and
// the held-out color-shape pairs the prior never sees.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/mesh/mesh.h"

namespace psd3d::tinyworld {

enum class Shape { kCube, kSphere, kCylinder, kCone, kTorus, kPyramid };
enum class Color { kRed, kOrange, kYellow, kGreen, kBlue, kPurple, kPink, kBrown };
inline constexpr int kNumShapes = 6;
inline constexpr int kNumColors = 8;

using Rgb = std::array<float, 3>;  // sRGB in [0,1]

absl::string_view ShapeName(Shape shape);
absl::string_view ColorName(Color color);
// Flat albedo of each color: saturated, mid-bright sRGB, far enough apart to tell apart when shaded.
Rgb ColorRgb(Color color);
// Shapes with 4-fold symmetry about the y axis (cube, pyramid) look different under yaw; the others
// are surfaces of revolution about y, whose renders do not depend on yaw.
bool YawMatters(Shape shape);

// The primitive's render mesh (worker/mesh/primitives.h), built once and cached; CPU tensors.
const Mesh& ShapeMesh(Shape shape);

// What a prompt asks for.
struct Subject {
  Color color;
  Shape shape;
  bool operator==(const Subject& o) const { return color == o.color && shape == o.shape; }
};
std::string SubjectName(const Subject& s);  // "red torus"

// All 48 subjects, color-major (index = color·6 + shape), and the split of docs/tiny-world.md.
std::vector<Subject> AllSubjects();
bool IsHeldOut(const Subject& s);  // red torus, blue cone, green pyramid, yellow cylinder, purple cube, orange sphere
std::vector<Subject> SeenSubjects();     // the 42 the prior trains on
std::vector<Subject> HeldOutSubjects();  // the 6 it never sees
int SubjectIndex(const Subject& s);

// Prompt templates with "{color}" and "{shape}" slots; index 0 is "a {color} {shape}". MakePrompt
// writes "an" before a vowel ("an orange cube").
const std::vector<std::string>& PromptTemplates();
std::string MakePrompt(const Subject& s, int template_index = 0);

// The subject of a prompt: exactly one color word and one shape word among known words. Errors
// (INVALID_ARGUMENT) name the unknown word, or say that the color or shape is missing or given twice.
absl::StatusOr<Subject> ParsePrompt(absl::string_view prompt);

}  // namespace psd3d::tinyworld
