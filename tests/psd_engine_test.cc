// The PSD engine behind worker/engine.h, run in-process through LocalJobContext on the tiny pack (CPU,
// a few steps per stage): a job ends with mesh.glb and previews, cancel stops within one step, a
// shutdown checkpoint resumes to the same GLB, and bad jobs fail for good with clear errors.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/match.h"
#include "common/file_io.h"
#include "worker/local_job.h"
#include "worker/psd_engine.h"
#include "worker/pipeline/job_run.h"

namespace psd3d {
namespace {

// Small renders so a step costs about what the prior does.
const std::vector<std::string> kSmall = {"coarse.render_size=16", "coarse.samples_per_ray=16", "geometry.resolution=12",
                                         "geometry.render_size=32", "texture.render_size=32"};

std::unique_ptr<PsdEngine> MakeEngine() {
  PsdEngineOptions o;
  o.packs["tiny"] = DefaultTinyPackDir();
  o.device = "cpu";
  o.preview_size = 32;
  o.settings = kSmall;
  auto e = PsdEngine::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

v1::JobSpec Spec(const std::string& prompt, v1::JobSpec::Method method = v1::JobSpec::PSD) {
  v1::JobSpec s;
  s.set_prompt(prompt);
  s.set_seed(3);
  s.set_method(method);
  s.set_quality(v1::JobSpec::DRAFT);
  s.set_model_pack("tiny");
  s.set_preview_interval(2);
  for (v1::Stage st : {v1::STAGE_COARSE, v1::STAGE_GEOMETRY, v1::STAGE_TEXTURE}) {
    v1::StageOverride* o = s.add_stage_overrides();
    o->set_stage(st);
    o->set_steps(2);
  }
  v1::StageOverride* o = s.add_stage_overrides();
  o->set_stage(v1::STAGE_EXPORT);
  o->set_render_resolution(64);
  return s;
}

class PsdEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/psd_engine_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  LocalJobOptions Options(const v1::JobSpec& spec) {
    LocalJobOptions o;
    o.spec = spec;
    o.output_glb = dir_ + "/mesh.glb";
    o.preview_dir = dir_;
    o.checkpoint_path = dir_ + "/checkpoint.safetensors";
    return o;
  }
  std::string dir_;
};

TEST_F(PsdEngineTest, RunsAJobToAGlbWithProgressAndPreviews) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  LocalJobOptions o = Options(Spec("a red cube"));
  std::vector<v1::JobEvent::Progress> events;
  o.on_progress = [&](const v1::JobEvent::Progress& p) { events.push_back(p); };
  LocalJobContext ctx(o);
  ASSERT_TRUE(engine->Run(ctx, nullptr).ok());
  ASSERT_EQ(events.size(), 7u);  // 3 stages × 2 steps, then export
  EXPECT_EQ(events[0].stage(), v1::STAGE_COARSE);
  EXPECT_EQ(events[2].stage(), v1::STAGE_GEOMETRY);
  EXPECT_EQ(events[4].stage(), v1::STAGE_TEXTURE);
  EXPECT_EQ(events[6].stage(), v1::STAGE_EXPORT);
  EXPECT_FLOAT_EQ(events[6].progress(), 1.0f);
  EXPECT_GT(events[1].metrics().step_seconds(), 0);
  EXPECT_NE(events[1].metrics().reward(), 0);  // PSD reports the winner's reward
  EXPECT_EQ(ctx.previews(), 3);                // every stage's end (the interval is 2)
  EXPECT_EQ(ctx.checkpoints(), 3);             // every stage boundary
  auto glb = ReadFileToString(dir_ + "/mesh.glb");
  ASSERT_TRUE(glb.ok());
  EXPECT_EQ(glb->substr(0, 4), "glTF");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/preview.png"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/texture-2.png"));
}

TEST_F(PsdEngineTest, CancelStopsWithinOneStep) {
  auto engine = MakeEngine();
  std::atomic<bool> cancel{false};
  LocalJobOptions o = Options(Spec("a blue sphere"));
  o.cancel = &cancel;
  int steps = 0;
  o.on_progress = [&](const v1::JobEvent::Progress&) {
    if (++steps == 3) cancel = true;  // cancelled during step 3's report
  };
  LocalJobContext ctx(o);
  absl::Status s = engine->Run(ctx, nullptr);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_EQ(ctx.steps(), 3);  // no further step was taken
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/mesh.glb"));
}

TEST_F(PsdEngineTest, ShutdownCheckpointResumesToTheSameMesh) {
  auto engine = MakeEngine();
  const v1::JobSpec spec = Spec("a green cone");
  {
    LocalJobOptions o = Options(spec);
    o.output_glb = dir_ + "/straight.glb";
    o.checkpoint_path.clear();
    LocalJobContext ctx(o);
    ASSERT_TRUE(engine->Run(ctx, nullptr).ok());
  }
  std::atomic<bool> shutdown{false};
  LocalJobOptions o = Options(spec);
  o.shutdown = &shutdown;
  int steps = 0;
  o.on_progress = [&](const v1::JobEvent::Progress&) {
    if (++steps == 3) shutdown = true;  // inside the geometry stage
  };
  {
    LocalJobContext ctx(o);
    EXPECT_TRUE(absl::IsCancelled(engine->Run(ctx, nullptr)));
    EXPECT_EQ(ctx.stop_reason(), StopReason::kShutdown);
  }
  auto checkpoint = ReadFileToString(o.checkpoint_path);
  ASSERT_TRUE(checkpoint.ok());
  o.shutdown = nullptr;
  std::vector<v1::JobEvent::Progress> events;
  o.on_progress = [&](const v1::JobEvent::Progress& p) { events.push_back(p); };
  LocalJobContext ctx(o);
  ASSERT_TRUE(engine->Run(ctx, &*checkpoint).ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].stage(), v1::STAGE_GEOMETRY);  // carried on from step 3 (geometry step 1)
  EXPECT_EQ(events[0].step(), 2);
  EXPECT_EQ(*ReadFileToString(dir_ + "/mesh.glb"), *ReadFileToString(dir_ + "/straight.glb"));

  // A checkpoint of another job is ignored with a warning, and the job starts over.
  std::vector<std::string> logs;
  LocalJobOptions other = Options(Spec("a green cone", v1::JobSpec::SDS));
  other.on_log = [&](v1::JobEvent::Log::Level, const std::string& m) { logs.push_back(m); };
  LocalJobContext ctx2(other);
  ASSERT_TRUE(engine->Run(ctx2, &*checkpoint).ok());
  ASSERT_FALSE(logs.empty());
  EXPECT_TRUE(absl::StrContains(logs[0], "checkpoint ignored")) << logs[0];
  EXPECT_EQ(ctx2.steps(), 7);
}

TEST_F(PsdEngineTest, BadJobsFailForGoodWithClearErrors) {
  auto engine = MakeEngine();
  struct Case {
    v1::JobSpec spec;
    absl::StatusCode code;
    std::string says;
  };
  std::vector<Case> cases;
  cases.push_back({Spec("a red dragon"), absl::StatusCode::kInvalidArgument, "dragon"});
  v1::JobSpec neg = Spec("a red cube");
  neg.set_negative_prompt("ugly blurry");
  cases.push_back({neg, absl::StatusCode::kInvalidArgument, "ugly"});
  v1::JobSpec pack = Spec("a red cube");
  pack.set_model_pack("sdxl");
  cases.push_back({pack, absl::StatusCode::kFailedPrecondition, "sdxl"});
  v1::JobSpec export_steps = Spec("a red cube");
  export_steps.mutable_stage_overrides(3)->set_steps(4);
  cases.push_back({export_steps, absl::StatusCode::kInvalidArgument, "export"});
  for (const Case& c : cases) {
    LocalJobOptions o = Options(c.spec);
    o.job_id = "job-42";
    LocalJobContext ctx(o);
    absl::Status s = engine->Run(ctx, nullptr);
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), c.says)) << s;
    EXPECT_EQ(ctx.steps(), 0);
  }
  PsdEngineOptions o;
  o.packs["tiny"] = DefaultTinyPackDir();
  o.device = "tpu";
  EXPECT_FALSE(PsdEngine::Create(o).ok());
  o.device = "cpu";
  o.settings = {"coarse.bogus=1"};
  EXPECT_FALSE(PsdEngine::Create(o).ok());
}

}  // namespace
}  // namespace psd3d
