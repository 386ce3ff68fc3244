// The whole pipeline with the shipped tiny pack on CPU, at a few steps per stage and small renders:
// stages follow each other, every method exports a GLB the Khronos validator accepts, a checkpoint
// taken in any stage resumes the same trajectory bit for bit, a non-finite state fails the step with
// its stage and step, and presets, overrides and settings validate.
#include <gtest/gtest.h>

#include <c10/core/GradMode.h>

#include <cmath>
#include <filesystem>

#include "common/file_io.h"
#include "tests/gltf_validator.h"
#include "worker/formats/glb_reader.h"
#include "worker/pipeline/pipeline.h"
#include "worker/pipeline/presets.h"
#include "tests/pipeline/tiny_pack_test_base.h"

namespace psd3d {
namespace {

constexpr GuidanceMethod kMethods[] = {GuidanceMethod::kSds, GuidanceMethod::kPsd, GuidanceMethod::kPsdFixedNegative,
                                       GuidanceMethod::kDreamDpo, GuidanceMethod::kRewardGradient};

class PipelineTest : public TinyPackTest {
 protected:
  // DRAFT with `steps` steps per stage and small renders (the prior still sees 64² images).
  static PipelineConfig Short(GuidanceMethod method, int64_t steps = 2) {
    PipelineConfig c = PresetConfig(Quality::kDraft, method);
    for (const std::string& s :
         {absl::StrCat("all.steps=", steps), std::string("coarse.render_size=16"), std::string("coarse.samples_per_ray=16"),
          std::string("geometry.resolution=12"), std::string("geometry.render_size=32"),
          std::string("texture.render_size=32"), std::string("export.texture_size=64")}) {
      EXPECT_TRUE(SetConfigValue(s, &c).ok()) << s;
    }
    return c;
  }
  static std::unique_ptr<Pipeline> Make(GuidanceMethod method, uint64_t seed, int64_t steps = 2) {
    auto p = Pipeline::Create(*prior_, reward_.get(), "a red cube", Short(method, steps), seed);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }
  static void RunToExport(Pipeline& p) {
    while (p.stage() != PipelineStage::kExport) {
      auto r = p.Step();
      ASSERT_TRUE(r.ok()) << r.status();
    }
  }
};

TEST_F(PipelineTest, RunsTheStagesInOrderAndExportsATexturedMesh) {
  std::unique_ptr<Pipeline> p = Make(GuidanceMethod::kPsd, 7, 3);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->ExportGlb().ok());  // nothing to export before the texture stage ends
  std::vector<PipelineStage> seen;
  double last_progress = 0;
  while (p->stage() != PipelineStage::kExport) {
    auto r = p->Step();
    ASSERT_TRUE(r.ok()) << r.status();
    seen.push_back(r->stage);
    EXPECT_EQ(r->stage_steps, 3);
    EXPECT_EQ(r->step, static_cast<int64_t>((seen.size() - 1) % 3 + 1));
    EXPECT_GT(r->progress, last_progress);
    last_progress = r->progress;
  }
  ASSERT_EQ(seen.size(), 9u);
  EXPECT_EQ(seen[2], PipelineStage::kCoarse);
  EXPECT_EQ(seen[3], PipelineStage::kGeometry);
  EXPECT_EQ(seen[6], PipelineStage::kTexture);
  EXPECT_DOUBLE_EQ(last_progress, 1.0);
  auto glb = p->ExportGlb();
  ASSERT_TRUE(glb.ok()) << glb.status();
  auto mesh = DecodeGlb(*glb);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_GT(mesh->num_faces(), 0);
  ASSERT_TRUE(mesh->texture.defined());
  EXPECT_GE(mesh->texture.size(0), 64);
  auto png = p->PreviewPng(32);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->substr(1, 3), "PNG");
  EXPECT_FALSE(p->Step().ok());
}

TEST_F(PipelineTest, EveryMethodWritesAGlbTheValidatorAccepts) {
  if (const std::string missing = testing::GltfValidatorMissing(); !missing.empty()) FAIL() << missing;
  const std::string dir = ::testing::TempDir() + "/pipeline_glbs";
  std::filesystem::create_directories(dir);
  std::vector<std::string> files;
  for (GuidanceMethod m : kMethods) {
    std::unique_ptr<Pipeline> p = Make(m, 11, 1);
    ASSERT_NE(p, nullptr);
    RunToExport(*p);
    auto glb = p->ExportGlb();
    ASSERT_TRUE(glb.ok()) << GuidanceMethodName(m) << ": " << glb.status();
    const std::string path = absl::StrCat(dir, "/", GuidanceMethodName(m), ".glb");
    ASSERT_TRUE(WriteFileAtomically(path, *glb).ok());
    files.push_back(path);
  }
  const testing::GltfValidation v = testing::RunGltfValidator(files);
  const std::string& output = v.output;
  EXPECT_EQ(v.exit_code, 0) << output;
  for (GuidanceMethod m : kMethods)
    EXPECT_NE(output.find(absl::StrCat(GuidanceMethodName(m), ".glb: 0 errors")), std::string::npos) << output;
}

// A checkpoint after k steps, loaded into a fresh pipeline, ends exactly where the uninterrupted run
// ends: in the coarse stage, right after a stage boundary, and inside the texture stage.
TEST_F(PipelineTest, CheckpointAtAnyStepResumesBitForBit) {
  std::unique_ptr<Pipeline> straight = Make(GuidanceMethod::kPsd, 5);
  ASSERT_NE(straight, nullptr);
  RunToExport(*straight);
  const std::map<std::string, at::Tensor> expected = straight->State();
  for (int k : {1, 2, 5}) {
    std::unique_ptr<Pipeline> first = Make(GuidanceMethod::kPsd, 5);
    for (int i = 0; i < k; ++i) ASSERT_TRUE(first->Step().ok());
    const std::map<std::string, at::Tensor> saved = first->State();
    first.reset();
    std::unique_ptr<Pipeline> resumed = Make(GuidanceMethod::kPsd, 999);  // the state brings its own RNG
    ASSERT_TRUE(resumed->LoadState(saved).ok()) << "k=" << k;
    EXPECT_EQ(resumed->steps_done(), k);
    RunToExport(*resumed);
    const std::map<std::string, at::Tensor> got = resumed->State();
    ASSERT_EQ(got.size(), expected.size()) << "k=" << k;
    for (const auto& [name, t] : expected) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_TRUE(at::equal(got.at(name), t)) << "k=" << k << ": " << name << " differs";
    }
    EXPECT_EQ(*resumed->ExportGlb(), *straight->ExportGlb()) << "k=" << k;
  }
  std::unique_ptr<Pipeline> p = Make(GuidanceMethod::kPsd, 5);
  EXPECT_FALSE(p->LoadState({}).ok());
}

// Divergence: parameters that went non-finite fail the next step with the stage and step in the
// message (the engine adds the job id and fails the job), and a checkpoint holding them is refused.
TEST_F(PipelineTest, NonFiniteParametersFailTheStepNamingStageAndStep) {
  PipelineConfig c = Short(GuidanceMethod::kSds);
  auto coarse = NerfStage::Create(*prior_, nullptr, "a red cube", c.coarse, 3);
  ASSERT_TRUE(coarse.ok());
  ASSERT_TRUE((*coarse)->Step().ok());
  auto mesh = MeshStage::Create(*prior_, nullptr, "a red cube", c.geometry, (*coarse)->field(), 4);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  std::map<std::string, at::Tensor> saved = (*coarse)->State();
  {
    c10::NoGradGuard no_grad;
    (*coarse)->field().Parameters().mlp[0].fill_(NAN);
    (*mesh)->color_field().Parameters().encoding[0].fill_(INFINITY);
  }
  auto r = (*coarse)->Step();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("nerf stage"), absl::string_view::npos) << r.status();
  EXPECT_NE(r.status().message().find("at step 1"), absl::string_view::npos) << r.status();
  auto m = (*mesh)->Step();
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("geometry stage"), absl::string_view::npos) << m.status();
  EXPECT_NE(m.status().message().find("at step 0"), absl::string_view::npos) << m.status();
  saved["field.density_network.0.weight"].fill_(NAN);
  EXPECT_FALSE((*coarse)->LoadState(saved).ok());
}

TEST_F(PipelineTest, PresetsOverridesAndSettingsValidate) {
  for (Quality q : {Quality::kDraft, Quality::kStandard, Quality::kHigh})
    for (GuidanceMethod m : kMethods) EXPECT_TRUE(ValidatePipelineConfig(PresetConfig(q, m)).ok()) << QualityName(q);
  PipelineConfig c = PresetConfig(Quality::kDraft, GuidanceMethod::kPsd);
  StageOverride o;
  o.steps = 0;
  EXPECT_FALSE(ApplyStageOverride(PipelineStage::kGeometry, o, &c).ok());
  o = {};
  o.render_resolution = 4;
  EXPECT_FALSE(ApplyStageOverride(PipelineStage::kTexture, o, &c).ok());
  o = {};
  o.steps = 10;
  EXPECT_FALSE(ApplyStageOverride(PipelineStage::kExport, o, &c).ok());  // export has no steps
  o = {};
  o.steps = 10;
  o.batch_views = 2;
  ASSERT_TRUE(ApplyStageOverride(PipelineStage::kCoarse, o, &c).ok());
  EXPECT_EQ(c.coarse.steps, 10);
  EXPECT_EQ(c.coarse.views, 2);
  // The t window anneals over the new length.
  const PipelineConfig preset = PresetConfig(Quality::kDraft, GuidanceMethod::kPsd);
  EXPECT_DOUBLE_EQ(c.coarse.guidance.t_max.At(10), preset.coarse.guidance.t_max.At(preset.coarse.steps));
  EXPECT_TRUE(SetConfigValue("geometry.t_max=0.6:0.2", &c).ok());
  EXPECT_DOUBLE_EQ(c.geometry.guidance.t_max.At(0), 0.6);
  EXPECT_TRUE(SetConfigValue("all.guidance_scale=20", &c).ok());
  EXPECT_EQ(c.texture.guidance.guidance_scale, 20);
  EXPECT_TRUE(SetConfigValue("coarse.grid_levels=6", &c).ok());
  EXPECT_EQ(c.coarse.field.encoding.levels, 6);
  // ψ from the ranking forward: on in the GPU presets, off in DRAFT (CPU); settable per stage.
  EXPECT_FALSE(c.geometry.guidance.psi_from_ranking);
  EXPECT_TRUE(PresetConfig(Quality::kStandard, GuidanceMethod::kPsd).texture.guidance.psi_from_ranking);
  EXPECT_TRUE(SetConfigValue("geometry.psi_from_ranking=1", &c).ok());
  EXPECT_TRUE(c.geometry.guidance.psi_from_ranking);
  EXPECT_FALSE(c.coarse.guidance.psi_from_ranking);
  EXPECT_TRUE(SetConfigValue("all.per_view_winner=1", &c).ok());
  EXPECT_TRUE(c.coarse.guidance.per_view_winner && c.texture.guidance.per_view_winner);
  // CUDA graphs: on by default (the GPU presets replay the step's prior work); settable per stage.
  EXPECT_TRUE(PresetConfig(Quality::kStandard, GuidanceMethod::kPsd).coarse.guidance.cuda_graphs);
  EXPECT_TRUE(SetConfigValue("texture.cuda_graphs=0", &c).ok());
  EXPECT_FALSE(c.texture.guidance.cuda_graphs);
  EXPECT_TRUE(c.geometry.guidance.cuda_graphs);
  EXPECT_TRUE(SetConfigValue("all.loser_uses_cfg=0", &c).ok());
  EXPECT_FALSE(c.coarse.guidance.loser_uses_cfg || c.texture.guidance.loser_uses_cfg);
  EXPECT_TRUE(SetConfigValue("coarse.pref_t_max=0.5", &c).ok());
  EXPECT_EQ(c.coarse.guidance.pref_t_max, 0.5);
  EXPECT_EQ(c.geometry.guidance.pref_t_max, 1.0);
  EXPECT_TRUE(SetConfigValue("all.pref_scale=clip", &c).ok());
  EXPECT_EQ(c.texture.guidance.pref_scale, PreferenceScale::kClip);
  EXPECT_FALSE(SetConfigValue("all.pref_scale=sigmoid", &c).ok());
  EXPECT_EQ(PresetConfig(Quality::kDraft, GuidanceMethod::kPsd).geometry.init_softness, 2.0);
  EXPECT_EQ(PresetConfig(Quality::kStandard, GuidanceMethod::kPsd).geometry.init_softness, 0.0);
  EXPECT_TRUE(SetConfigValue("geometry.init_softness=0", &c).ok());
  EXPECT_EQ(c.geometry.init_softness, 0.0);
  EXPECT_FALSE(SetConfigValue("geometry.init_softness=-1", &c).ok());
  EXPECT_TRUE(SetConfigValue("geometry.init_smoothing=2", &c).ok());
  EXPECT_EQ(c.geometry.init_smoothing, 2);
  for (const char* bad : {"coarse.nonsense=1", "coarse.steps=x", "nowhere.steps=3", "coarse.steps", "coarse.views=0",
                          "export.texture_size=3", "geometry.samples_per_ray=8", "coarse.grid_levels=0",
                          "geometry.init_smoothing=-1", "geometry.init_smoothing=9"})
    EXPECT_FALSE(SetConfigValue(bad, &c).ok()) << bad;
}

}  // namespace
}  // namespace psd3d
