// Stage 1 (coarse NeRF) with the shipped tiny pack on CPU: steps are deterministic, a checkpoint resumes
// the same trajectory bit for bit, bad configs are refused, and SDS turns the blob toward the prompt.
#include <gtest/gtest.h>

#include "worker/pipeline/nerf_stage.h"
#include "worker/tinyworld/scene_render.h"
#include "tests/pipeline/tiny_pack_test_base.h"

namespace psd3d {
namespace {

class NerfStageTest : public TinyPackTest {
 protected:
  static NerfStageConfig Small(GuidanceMethod method) {
    NerfStageConfig c;
    c.steps = 40;
    c.render_size = 24;
    c.samples_per_ray = 24;
    c.field.encoding.levels = 8;
    c.field.encoding.log2_table_size = 14;
    c.field.encoding.per_level_scale = 1.5;
    c.guidance.method = method;
    c.guidance.t_min = ScalarSchedule::Constant(0.2);
    c.guidance.t_max = ScalarSchedule::Constant(0.8);
    c.guidance.t_feedback = 1000;
    return c;
  }
};

TEST_F(NerfStageTest, RefusesBadConfigs) {
  NerfStageConfig c = Small(GuidanceMethod::kSds);
  c.views = 0;
  EXPECT_NE(std::string(NerfStage::Create(*prior_, nullptr, "a red cube", c, 1).status().message()).find("views"),
            std::string::npos);
  c = Small(GuidanceMethod::kSds);
  c.field.encoding.levels = 0;
  EXPECT_FALSE(NerfStage::Create(*prior_, nullptr, "a red cube", c, 1).ok());
  EXPECT_FALSE(NerfStage::Create(*prior_, nullptr, "a red dragon", Small(GuidanceMethod::kSds), 1).ok());
  EXPECT_FALSE(NerfStage::Create(*prior_, nullptr, "a red cube", Small(GuidanceMethod::kPsd), 1).ok());  // no reward
}

TEST_F(NerfStageTest, CheckpointResumesTheSameTrajectory) {
  auto a = NerfStage::Create(*prior_, reward_.get(), "a blue cone", Small(GuidanceMethod::kPsd), 3);
  auto b = NerfStage::Create(*prior_, reward_.get(), "a blue cone", Small(GuidanceMethod::kPsd), 4);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*a)->Step().ok());
  ASSERT_TRUE((*b)->LoadState((*a)->State()).ok());
  for (int i = 0; i < 2; ++i) {
    auto ra = (*a)->Step(), rb = (*b)->Step();
    ASSERT_TRUE(ra.ok() && rb.ok());
    EXPECT_EQ(ra->loss, rb->loss);
    EXPECT_EQ(ra->guidance.t, rb->guidance.t);
    EXPECT_TRUE(ra->guidance.psi_updated);
  }
  EXPECT_EQ((*b)->step(), 4);
  for (const auto& [name, t] : (*a)->field().StateDict()) EXPECT_TRUE(at::equal(t, (*b)->field().StateDict().at(name))) << name;
  EXPECT_FALSE((*b)->LoadState({}).ok());
}

TEST_F(NerfStageTest, SdsTurnsTheBlobTowardThePromptsColor) {
  auto stage = NerfStage::Create(*prior_, nullptr, "a red sphere", Small(GuidanceMethod::kSds), 5);
  ASSERT_TRUE(stage.ok());
  CameraBatch view = tinyworld::JudgeCameras().index(0);
  auto redness = [&] {
    at::Tensor im = (*stage)->Render(view, 24);
    at::Tensor c = im.index({0, at::indexing::Slice(), at::indexing::Slice(8, 16), at::indexing::Slice(8, 16)}).mean({1, 2});
    return (c[0] - 0.5 * (c[1] + c[2])).item<double>();
  };
  const double before = redness();
  while (!(*stage)->done()) {
    auto r = (*stage)->Step();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(std::isfinite(r->loss));
  }
  EXPECT_GT(redness(), before + 0.2) << before;
}

}  // namespace
}  // namespace psd3d
