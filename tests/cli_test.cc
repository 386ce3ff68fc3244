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

// The CLI against a server with TLS and API tokens: --tls_ca, $PSD3D_API_TOKEN, exit code 7.
class CliTlsTest : public ::testing::Test {
 protected:
  static constexpr char kToken[] = "cli-0123456789abcdef0123456789ab";

  void SetUp() override {
    dir_ = testing::MakeTempDir("cli-tls");
    tls_ = testing::MakeTlsFiles(dir_);
    testing::WriteFileAtomically(dir_ + "/tokens", std::string("ci:") + kToken + "\n");
    int port = 0;
    server_ = testing::StartServer(redis_, dir_, &port,
                                   {"--tls_cert=" + tls_.server_cert, "--tls_key=" + tls_.server_key,
                                    "--api_tokens_file=" + dir_ + "/tokens"});
    // localhost: the certificate's DNS name, as a real deployment is reached.
    address_ = absl::StrCat("localhost:", port);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "--- server log\n" << server_->Log();
  }

  struct Result {
    int exit_code;
    std::string output;
  };
  // `token`: the value of $PSD3D_API_TOKEN, or unset when empty.
  Result Cli(std::vector<std::string> args, const std::string& token) {
    args.insert(args.begin(), {testing::CliBinary(), "--server=" + address_});
    const std::string env = token.empty() ? "PSD3D_API_TOKEN" : "PSD3D_API_TOKEN=" + token;
    Process p(absl::StrCat("cli", ++calls_), args, dir_, {env});
    const int code = p.Wait(absl::Seconds(60));
    return {code, p.Log()};
  }

  testing::RedisServer redis_;
  std::string dir_, address_;
  testing::TlsFiles tls_;
  std::unique_ptr<Process> server_;
  int calls_ = 0;
};

TEST_F(CliTlsTest, SubmitWaitAndDownloadWithAToken) {
  auto worker = testing::StartTestWorker(redis_, dir_, "w1");
  const std::string ca = "--tls_ca=" + tls_.ca_cert, glb = dir_ + "/cube.glb";
  // --wait follows WatchJob and downloads over the same authenticated channel.
  Result r = Cli({ca, "submit", "a tls cube steps=6 step_ms=5", "--wait", "--output=" + glb, "--json"}, kToken);
  ASSERT_EQ(r.exit_code, 0) << r.output << worker->Log();
  std::ifstream in(glb, std::ios::binary);
  std::string magic(4, '\0');
  ASSERT_TRUE(in.read(magic.data(), 4)) << r.output;
  EXPECT_EQ(magic, "glTF");
  const size_t at = r.output.find("\"id\"");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string id = r.output.substr(r.output.find('"', r.output.find(':', at)) + 1, 26);

  Result dl = Cli({ca, "download", id, "-o", dir_ + "/again.glb"}, kToken);
  EXPECT_EQ(dl.exit_code, 0) << dl.output;
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/again.glb"), std::filesystem::file_size(glb));
  Result watch = Cli({ca, "watch", id}, kToken);
  EXPECT_EQ(watch.exit_code, 0) << watch.output;
  EXPECT_FALSE(absl::StrContains(r.output + dl.output + watch.output, kToken)) << "the CLI printed the token";
}

TEST_F(CliTlsTest, MissingOrWrongTokenAndPlaintextFailClearly) {
  const std::string ca = "--tls_ca=" + tls_.ca_cert;
  Result none = Cli({ca, "submit", "a cube"}, "");
  EXPECT_EQ(none.exit_code, 7) << none.output;
  EXPECT_TRUE(absl::StrContains(none.output, "UNAUTHENTICATED")) << none.output;
  EXPECT_TRUE(absl::StrContains(none.output, "set $PSD3D_API_TOKEN")) << none.output;

  const std::string wrong = "wrong-0123456789abcdef0123456789";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {ca, "submit", "a cube"}, {ca, "watch", "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
           {ca, "download", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "-o", dir_ + "/x.glb"}}) {
    Result r = Cli(args, wrong);
    EXPECT_EQ(r.exit_code, 7) << args[1] << ": " << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "check $PSD3D_API_TOKEN")) << r.output;
    EXPECT_FALSE(absl::StrContains(r.output, wrong)) << "the CLI printed the token: " << r.output;
  }
  EXPECT_EQ((*redis_.Connect()->Command({"ZCARD", "psd3d:queue"})).integer, 0);

  // Plaintext to a TLS server: unreachable (4), with the connect hint (ConnectHint's own text: without
  // a token the plaintext-token warning, which also says "add --tls", is not printed).
  Result plain = Cli({"list", "--timeout_seconds=5"}, "");
  EXPECT_EQ(plain.exit_code, 4) << plain.output;
  EXPECT_TRUE(absl::StrContains(plain.output, "(if the server serves TLS, add --tls or --tls_ca=FILE)")) << plain.output;
  EXPECT_FALSE(absl::StrContains(plain.output, "not sent over a plaintext connection")) << plain.output;
  // With a token: the warning that it is not sent, and still the hint.
  Result plain_token = Cli({"list", "--timeout_seconds=5"}, kToken);
  EXPECT_EQ(plain_token.exit_code, 4) << plain_token.output;
  EXPECT_TRUE(absl::StrContains(plain_token.output, "not sent over a plaintext connection")) << plain_token.output;
  EXPECT_TRUE(absl::StrContains(plain_token.output, "if the server serves TLS")) << plain_token.output;
  // System roots do not know the test CA.
  Result untrusted = Cli({"--tls", "list", "--timeout_seconds=5"}, kToken);
  EXPECT_EQ(untrusted.exit_code, 4) << untrusted.output;
  EXPECT_TRUE(absl::StrContains(untrusted.output, "--tls_ca")) << untrusted.output;
  // A name the certificate does not carry, then the override that fixes it.
  Result misnamed = Cli({ca, "--tls_server_name=psd3d.example.com", "list", "--timeout_seconds=5"}, kToken);
  EXPECT_EQ(misnamed.exit_code, 4) << misnamed.output;
  EXPECT_TRUE(absl::StrContains(misnamed.output, "--tls_server_name")) << misnamed.output;
  Result renamed = Cli({ca, "--tls_server_name=localhost", "list"}, kToken);
  EXPECT_EQ(renamed.exit_code, 0) << renamed.output;
  // Bad TLS settings are usage errors.
  EXPECT_EQ(Cli({"--tls_ca=" + dir_ + "/missing.pem", "list"}, kToken).exit_code, 2);
  EXPECT_EQ(Cli({"--tls_server_name=localhost", "list"}, kToken).exit_code, 2);
}

}  // namespace
}  // namespace psd3d
