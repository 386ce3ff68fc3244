// psd3d: the command-line client of the psd3d job service. Subcommand dispatch and usage live here; the
// subcommands themselves are in commands.cc.
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "client/args.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/errors.h"

namespace {

std::string DefaultServer() {
  const char* env = std::getenv("PSD3D_SERVER");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
}

}  // namespace

ABSL_FLAG(std::string, server, DefaultServer(),
          "psd3d server address, host:port (default: $PSD3D_SERVER, else 127.0.0.1:50051)");
ABSL_FLAG(bool, json, false, "Print JSON (protobuf's mapping, proto field names) instead of text");
ABSL_FLAG(int, timeout_seconds, 30, "Deadline of each unary call (submit, get, list, cancel)");

namespace {

// Abseil prints it after "psd3d: ".
constexpr char kUsage[] = R"(the client of the psd3d text-to-3D job service: submit jobs, follow them, fetch meshes.

Usage: psd3d COMMAND [ARGS] [--flags]

Commands:
  submit PROMPT           Enqueue a job and print its id. With --wait: follow it with a progress bar,
                          save its previews, and download the mesh when it succeeds.
  get JOB_ID              Show a job: state, attempt, stage and progress, metrics, queue position, ETA,
                          times, error, artifacts.
  list                    List jobs, newest first (--state, --label, --order, --page_size, --all).
  cancel JOB_ID           Cancel a job and print its resulting state.
  watch JOB_ID            Print a job's events until it ends; resumes by itself when the stream drops.
  download JOB_ID [NAME]  Download an artifact (default mesh.glb); resumes a partial <output>.part and
                          verifies the SHA-256.
  generate PROMPT         Run the job here, without a server: the same PSD engine on the local model
                          pack (--device, --pack_dir), with a progress bar, previews in a folder
                          (--previews_dir, default <name>-previews/) and the GLB at -o (default
                          <prompt>.glb). --checkpoint=FILE makes Ctrl-C resumable.

Examples:
  psd3d generate "a red cube" -o red_cube.glb
  psd3d submit "a red cube" --wait -o red_cube.glb
  psd3d submit "a wooden chair" --method=sds --quality=standard --steps=coarse=200,texture=100 --label=team=props
  psd3d list --state=queued,running --label=team=props
  psd3d watch 01ARZ3NDEKTSV4RRFFQ69G5FAV --previews_dir=previews
  psd3d download 01ARZ3NDEKTSV4RRFFQ69G5FAV -o chair.glb
  psd3d get 01ARZ3NDEKTSV4RRFFQ69G5FAV --json | jq .state
  PSD3D_API_TOKEN=... psd3d --server=psd3d.example.com:443 --tls list

Connection: --server or $PSD3D_SERVER; plaintext unless --tls (system CAs) or --tls_ca=FILE. A server
with API tokens needs TLS and the token in $PSD3D_API_TOKEN (never a flag, so it stays out of `ps`);
it is sent as "authorization: Bearer <token>" on every call, and only over TLS.

Exit codes:
  0  success
  1  the job ended FAILED or CANCELLED (submit --wait, watch)
  2  usage error, or the server rejected the request (INVALID_ARGUMENT)
  3  no such job or artifact (NOT_FOUND)
  4  server unreachable, UNAVAILABLE or DEADLINE_EXCEEDED
  5  server at capacity (RESOURCE_EXHAUSTED), e.g. the queue is full
  6  any other error
  7  not authenticated (UNAUTHENTICATED): $PSD3D_API_TOKEN missing, or not accepted by the server)";

using Command = int (*)(const psd3d::cli::Context&);

const std::pair<const char*, Command> kCommands[] = {
    {"submit", psd3d::cli::Submit}, {"get", psd3d::cli::Get},     {"list", psd3d::cli::List},
    {"cancel", psd3d::cli::Cancel}, {"watch", psd3d::cli::Watch}, {"download", psd3d::cli::Download},
};

// --help lists this program's flags only, not the libraries' (those stay under --helpfull).
void ConfigureUsage() {
  absl::SetProgramUsageMessage(kUsage);
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "client/"); };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.normalize_filename = [](absl::string_view file) {
    const size_t at = file.rfind("client/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  absl::SetFlagsUsageConfig(config);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace psd3d::cli;
  ConfigureUsage();
  absl::StatusOr<CheckedArgs> checked = CheckArgs(argc, argv);
  if (!checked.ok()) return UsageError(checked.status().message());
  if (checked->help) {
    // Abseil prints the help and then exits 1; asking for help is not an error.
    std::atexit([] {
      std::cout.flush();
      std::_Exit(kExitOk);
    });
  }
  std::vector<char*> args;
  for (std::string& a : checked->argv) args.push_back(a.data());
  const std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() < 2) {
    std::cerr << "psd3d: " << kUsage << "\n\nRun psd3d --help for the flags.\n";
    return kExitUsage;
  }
  const std::string name = positional[1];
#ifdef PSD3D_WITH_LOCAL_ENGINE
  if (name == "generate") return Generate(std::vector<std::string>(positional.begin() + 2, positional.end()));
#else
  if (name == "generate") return Fail(kExitUsage, "generate: this psd3d was built without the LibTorch engine");
#endif
  Command command = nullptr;
  for (const auto& [n, c] : kCommands) {
    if (name == n) command = c;
  }
  if (command == nullptr) return UsageError("unknown command '" + name + "'");
  if (absl::GetFlag(FLAGS_timeout_seconds) <= 0) return UsageError("--timeout_seconds: must be positive");

  // Failed calls are reported once, with advice (errors.cc); gRPC's own log lines (a failed TLS handshake
  // logs one) would only repeat them. $GRPC_VERBOSITY brings them back for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
  Context ctx;
  ctx.server = absl::GetFlag(FLAGS_server);
  absl::StatusOr<Connection> connection = Connect(ctx.server);
  if (!connection.ok()) return UsageError(connection.status().message());
  ctx.channel = connection->channel;
  ctx.tls = connection->tls;
  ctx.token = connection->token;
  ctx.stub = psd3d::v1::GenerationService::NewStub(ctx.channel);
  ctx.json = absl::GetFlag(FLAGS_json);
  ctx.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  ctx.args.assign(positional.begin() + 2, positional.end());
  return command(ctx);
}
