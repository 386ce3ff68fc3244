// End to end with the real engine: redis-server, psd3d-server and psd3d-worker (the PSD engine on the
// tiny pack, CPU) as processes, the psd3d CLI as the client. A short DRAFT job runs to a GLB that the
// Khronos validator accepts, with its previews; a job the engine cannot read fails without retries.
// `psd3d generate` runs the same engine locally, without a server.
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/fixtures.h"
#include "tests/gltf_validator.h"

namespace psd3d {
namespace {

using testing::Process;

class PsdEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("psd_e2e");
    int port = 0;
    server_ = testing::StartServer(redis_, dir_, &port);
    address_ = absl::StrCat("127.0.0.1:", port);
    // Small renders keep a step near the cost of the prior itself.
    worker_ = std::make_unique<Process>(
        "worker",
        std::vector<std::string>{testing::WorkerBinary(), "--redis=" + redis_.address(), "--name=w1", "--device=cpu",
                                 "--metrics_address=", "--idle_wait_ms=100", "--progress_interval_ms=0",
                                 "--preview_size=32", "--log_level=info",
                                 "--set=coarse.render_size=16,coarse.samples_per_ray=16,geometry.resolution=12,"
                                 "geometry.render_size=32,texture.render_size=32"},
        dir_);
  }
  struct Result {
    int exit_code;
    std::string output;
  };
  Result Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {testing::CliBinary(), "--server=" + address_});
    Process p(absl::StrCat("cli", ++calls_), args, dir_);
    return {p.Wait(absl::Seconds(240)), p.Log()};
  }

  testing::RedisServer redis_;
  std::string dir_, address_;
  std::unique_ptr<Process> server_, worker_;
  int calls_ = 0;
};

TEST_F(PsdEndToEndTest, DraftJobRunsOnTheRealEngineToAValidGlb) {
  const std::string glb = dir_ + "/red_cube.glb", previews = dir_ + "/previews";
  Result r = Cli({"submit", "a red cube", "--wait", "-o", glb, "--previews_dir=" + previews, "--seed=4",
                  "--steps=coarse=2,geometry=2,texture=2", "--resolution=export=64", "--preview_interval=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output << "\n--- worker ---\n" << worker_->Log();
  int pngs = 0;
  for (const auto& e : std::filesystem::directory_iterator(previews)) pngs += e.path().extension() == ".png";
  EXPECT_GE(pngs, 3) << r.output;

  ASSERT_EQ(testing::GltfValidatorMissing(), "");
  const testing::GltfValidation v = testing::RunGltfValidator({glb});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_TRUE(absl::StrContains(v.output, "0 errors")) << v.output;

  // The job lists both artifacts: the mesh and the final preview.
  const std::string id = r.output.substr(0, r.output.find('\n'));
  Result get = Cli({"get", id});
  EXPECT_TRUE(absl::StrContains(get.output, "preview.png")) << get.output;
  EXPECT_TRUE(absl::StrContains(get.output, "mesh.glb")) << get.output;
}

TEST_F(PsdEndToEndTest, APromptThePackCannotReadFailsOnceWithTheWord) {
  Result r = Cli({"submit", "a red dragon", "--wait", "-o", dir_ + "/x.glb"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "INVALID_ARGUMENT")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "dragon")) << r.output;
  Result list = Cli({"list", "--json"});
  EXPECT_TRUE(absl::StrContains(list.output, "\"attempt\":1,")) << list.output;  // not retried
}

// `psd3d generate` runs the same engine in-process, without a server: progress, previews, a valid GLB.
// Repeated --set flags add up (each one here is needed to keep the run small).
TEST(LocalGenerateTest, WritesAValidGlbAndPreviewsWithoutAServer) {
  const std::string dir = testing::MakeTempDir("generate");
  const std::string glb = dir + "/cone.glb", previews = dir + "/previews";
  Process p("generate",
            {testing::CliBinary(), "generate", "a blue cone", "-o", glb, "--previews_dir=" + previews, "--seed=2",
             "--device=cpu", "--steps=coarse=2,geometry=2,texture=2", "--preview_interval=2",
             "--set=coarse.render_size=16", "--set=coarse.samples_per_ray=16",
             "--set=geometry.resolution=12,export.texture_size=64"},
            dir);
  ASSERT_EQ(p.Wait(absl::Seconds(240)), 0) << p.Log();
  EXPECT_TRUE(absl::StrContains(p.Log(), "saved " + glb)) << p.Log();
  EXPECT_TRUE(std::filesystem::exists(previews + "/latest.png")) << p.Log();
  ASSERT_EQ(testing::GltfValidatorMissing(), "");
  const testing::GltfValidation v = testing::RunGltfValidator({glb});
  EXPECT_EQ(v.exit_code, 0) << v.output;

  // A word the pack cannot read is a usage error that names it, and nothing is written.
  Process bad("generate-bad", {testing::CliBinary(), "generate", "a red dragon", "-o", dir + "/dragon.glb"}, dir);
  EXPECT_EQ(bad.Wait(absl::Seconds(60)), 2) << bad.Log();
  EXPECT_TRUE(absl::StrContains(bad.Log(), "dragon")) << bad.Log();
  EXPECT_FALSE(std::filesystem::exists(dir + "/dragon.glb"));
  // An earlier --set is not dropped by a later one: its bad key is reported.
  Process knob("generate-knob",
               {testing::CliBinary(), "generate", "a blue cone", "--set=coarse.bogus=1", "--set=geometry.resolution=12"},
               dir);
  EXPECT_EQ(knob.Wait(absl::Seconds(60)), 2) << knob.Log();
  EXPECT_TRUE(absl::StrContains(knob.Log(), "coarse.bogus")) << knob.Log();
}

// psd3d-worker takes --set once: Abseil would silently keep only the last of several.
TEST(WorkerFlagsTest, RepeatedSetIsRefusedBeforeAnythingStarts) {
  const std::string dir = testing::MakeTempDir("worker_flags");
  Process p("worker", {testing::WorkerBinary(), "--set=coarse.steps=3", "--set=geometry.steps=3"}, dir);
  EXPECT_EQ(p.Wait(absl::Seconds(30)), 2) << p.Log();
  EXPECT_TRUE(absl::StrContains(p.Log(), "comma list")) << p.Log();
}

}  // namespace
}  // namespace psd3d
