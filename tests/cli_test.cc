// End-to-end tests of the psd3d CLI as users run it: the real binary against a real server, worker
// and redis-server; checks outputs, files and the documented exit codes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/fixtures.h"

namespace psd3d {
namespace {

using testing::Process;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("cli");
    int port = 0;
    server_ = testing::StartServer(redis_, dir_, &port, {"--max_queue=2"});
    address_ = absl::StrCat("127.0.0.1:", port);
  }

  struct Result {
    int exit_code;
    std::string output;  // stdout and stderr
  };
  Result Cli(std::vector<std::string> args, const std::string& server = "") {
    args.insert(args.begin(), {testing::CliBinary(), "--server=" + (server.empty() ? address_ : server)});
    Process p(absl::StrCat("cli", ++calls_), args, dir_);
    int code = p.Wait(absl::Seconds(60));
    return {code, p.Log()};
  }
  long long Queued() { return (*redis_.Connect()->Command({"ZCARD", "psd3d:queue"})).integer; }

  testing::RedisServer redis_;
  std::string dir_, address_;
  std::unique_ptr<Process> server_;
  int calls_ = 0;
};

TEST_F(CliTest, SubmitWaitWritesMeshAndPreviewsThenGetAndList) {
  auto worker = testing::StartTestWorker(redis_, dir_, "w1");
  const std::string glb = dir_ + "/out/cube.glb", previews = dir_ + "/previews";
  Result r = Cli({"submit", "a red cube steps=12 step_ms=5", "--wait", "--output=" + glb, "--previews_dir=" + previews,
                  "--preview_interval=4", "--label=team=props"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(glb, std::ios::binary);
  std::string magic(4, '\0');
  ASSERT_TRUE(in.read(magic.data(), 4)) << "no mesh at " << glb << "\n" << r.output;
  EXPECT_EQ(magic, "glTF");
  int pngs = 0;
  for (const auto& e : std::filesystem::directory_iterator(previews)) pngs += e.path().extension() == ".png";
  EXPECT_GT(pngs, 0) << r.output;

  Result list = Cli({"list", "--label=team=props", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_TRUE(absl::StrContains(list.output, "SUCCEEDED")) << list.output;
  const size_t at = list.output.find("\"id\"");
  ASSERT_NE(at, std::string::npos) << list.output;
  const size_t start = list.output.find('"', list.output.find(':', at)) + 1;
  const std::string id = list.output.substr(start, 26);

  Result get = Cli({"get", id});
  EXPECT_EQ(get.exit_code, 0) << get.output;
  EXPECT_TRUE(absl::StrContains(get.output, "mesh.glb")) << get.output;

  Result dl = Cli({"download", id, "-o", dir_ + "/again.glb"});
  EXPECT_EQ(dl.exit_code, 0) << dl.output;
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/again.glb"), std::filesystem::file_size(glb));
}

TEST_F(CliTest, ErrorsHaveClearMessagesAndDocumentedExitCodes) {
  // Usage errors: exit 2, nothing enqueued.
  Result empty = Cli({"submit", ""});
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_TRUE(absl::StrContains(empty.output, "prompt")) << empty.output;
  Result bad_flag = Cli({"submit", "a cube", "--method=magic"});
  EXPECT_EQ(bad_flag.exit_code, 2) << bad_flag.output;
  EXPECT_TRUE(absl::StrContains(bad_flag.output, "method")) << bad_flag.output;
  Result unknown = Cli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_EQ(Queued(), 0);

  // NOT_FOUND: 3.
  Result missing = Cli({"get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
  EXPECT_EQ(missing.exit_code, 3) << missing.output;

  // A full queue (max_queue=2): 5; cancel of a queued job: 0 and CANCELLED.
  Result first = Cli({"submit", "one", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_EQ(Cli({"submit", "two"}).exit_code, 0);
  Result full = Cli({"submit", "three"});
  EXPECT_EQ(full.exit_code, 5) << full.output;
  EXPECT_EQ(Queued(), 2);
  const size_t at = first.output.find("\"id\"");
  ASSERT_NE(at, std::string::npos) << first.output;
  const std::string id = first.output.substr(first.output.find('"', first.output.find(':', at)) + 1, 26);
  Result cancel = Cli({"cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  EXPECT_TRUE(absl::StrContains(cancel.output, "CANCELLED")) << cancel.output;
  EXPECT_EQ(Queued(), 1);

  // Unreachable server: 4, quickly.
  Result down = Cli({"get", id, "--timeout_seconds=2"}, absl::StrCat("127.0.0.1:", testing::FreePort()));
  EXPECT_EQ(down.exit_code, 4) << down.output;
}

}  // namespace
}  // namespace psd3d
