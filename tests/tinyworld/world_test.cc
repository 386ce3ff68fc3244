// The tiny world's ground truth: subjects, prompts, the closed vocabulary, and the primitives.
#include <gtest/gtest.h>

#include <set>

#include "worker/mesh/mesh_ops.h"
#include "worker/tinyworld/tokenizer.h"
#include "worker/tinyworld/world.h"

namespace psd3d::tinyworld {
namespace {

TEST(World, FortyEightSubjectsSixHeldOut) {
  EXPECT_EQ(AllSubjects().size(), 48u);
  EXPECT_EQ(SeenSubjects().size(), 42u);
  ASSERT_EQ(HeldOutSubjects().size(), 6u);
  std::set<std::string> held;
  for (const Subject& s : HeldOutSubjects()) held.insert(SubjectName(s));
  EXPECT_EQ(held, (std::set<std::string>{"red torus", "blue cone", "green pyramid", "yellow cylinder", "purple cube",
                                         "orange sphere"}));
  for (int i = 0; i < 48; ++i) EXPECT_EQ(SubjectIndex(AllSubjects()[i]), i);
}

TEST(World, EveryTemplateParsesBackToItsSubject) {
  for (const Subject& s : AllSubjects()) {
    for (int t = 0; t < static_cast<int>(PromptTemplates().size()); ++t) {
      const std::string p = MakePrompt(s, t);
      absl::StatusOr<Subject> parsed = ParsePrompt(p);
      ASSERT_TRUE(parsed.ok()) << p << ": " << parsed.status();
      EXPECT_EQ(*parsed, s) << p;
    }
  }
  EXPECT_EQ(MakePrompt({Color::kPink, Shape::kTorus}, 2), "a torus that is pink");
  EXPECT_EQ(MakePrompt({Color::kOrange, Shape::kCube}, 1), "a photo of an orange cube");
  EXPECT_EQ(MakePrompt({Color::kYellow, Shape::kTorus}, 3), "one yellow torus");
  // Case and punctuation do not matter.
  EXPECT_EQ(*ParsePrompt("A Red CUBE."), (Subject{Color::kRed, Shape::kCube}));
}

TEST(World, BadPromptsSayWhatIsWrong) {
  auto error = [](const char* p) { return std::string(ParsePrompt(p).status().message()); };
  EXPECT_NE(error("a red dragon").find("unknown word 'dragon'"), std::string::npos) << error("a red dragon");
  EXPECT_NE(error("a red blue cube").find("two colors"), std::string::npos);
  EXPECT_NE(error("a cube sphere that is red").find("two shapes"), std::string::npos);
  EXPECT_NE(error("a cube").find("no color"), std::string::npos);
  EXPECT_NE(error("one green").find("no shape"), std::string::npos);
  EXPECT_EQ(ParsePrompt("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Tokenizer, PadsToMaxLengthAndRejectsUnknownWords) {
  const Tokenizer& tok = Tokenizer::TinyWorld();
  EXPECT_EQ(tok.max_length(), 10);
  auto ids = tok.Encode("a photo of a red cube");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 10u);
  EXPECT_EQ((*ids)[0], Tokenizer::kBos);
  EXPECT_EQ((*ids)[7], Tokenizer::kEos);
  EXPECT_EQ((*ids)[8], Tokenizer::kPad);
  auto empty = tok.Encode("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)[1], Tokenizer::kEos);
  EXPECT_FALSE(tok.Encode("a a a a a a a a a").ok());  // 9 words > 8
  EXPECT_EQ(*tok.Encode("an orange cube"), *tok.Encode("a orange cube"));  // what the models were trained on
  auto batch = tok.EncodeBatch({"a red cube", "one blue torus"});
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->sizes(), (at::IntArrayRef{2, 10}));
  EXPECT_FALSE(tok.EncodeBatch({"a red cube", "a red car"}).ok());
  EXPECT_FALSE(Tokenizer::Create({"a", "a"}, 5).ok());
  EXPECT_FALSE(Tokenizer::Create({"two words"}, 5).ok());
}

class Primitive : public ::testing::TestWithParam<int> {};

TEST_P(Primitive, ClosedOutwardAndInsideTheUnitSphere) {
  const Shape shape = static_cast<Shape>(GetParam());
  const Mesh& m = ShapeMesh(shape);
  ASSERT_TRUE(ValidateMesh(m).ok());
  const at::Tensor r = m.vertices.norm(2, 1);
  EXPECT_LE(r.max().item<float>(), 1.0f) << ShapeName(shape);
  EXPECT_GE(r.max().item<float>(), 0.85f) << ShapeName(shape);
  // Outward: the divergence theorem gives a positive volume, and every face of a convex shape points
  // away from the centroid of the shape (the torus: away from its tube's centre circle).
  const at::Tensor v0 = m.vertices.index_select(0, m.faces.select(1, 0));
  const at::Tensor v1 = m.vertices.index_select(0, m.faces.select(1, 1));
  const at::Tensor v2 = m.vertices.index_select(0, m.faces.select(1, 2));
  const double volume = (v0 * at::cross(v1, v2, 1)).sum().item<double>() / 6.0;
  EXPECT_GT(volume, 0.3) << ShapeName(shape);
  at::Tensor centre = (v0 + v1 + v2) / 3.0;
  at::Tensor inner = m.vertices.mean(0).expand_as(centre);
  if (shape == Shape::kTorus) {
    at::Tensor flat = centre.clone();
    flat.select(1, 1).zero_();
    inner = flat / flat.norm(2, 1, true) * 0.66;
  }
  const at::Tensor outward = (FaceNormals(m) * (centre - inner)).sum(1);
  EXPECT_EQ(outward.le(0).sum().item<int64_t>(), 0) << ShapeName(shape);
  // Closed as a surface: the total face normal (area-weighted) vanishes.
  EXPECT_LT((FaceNormals(m) * FaceAreas(m).unsqueeze(1)).sum(0).abs().max().item<float>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(AllShapes, Primitive, ::testing::Range(0, kNumShapes),
                         [](const auto& info) { return std::string(ShapeName(static_cast<Shape>(info.param))); });

}  // namespace
}  // namespace psd3d::tinyworld
