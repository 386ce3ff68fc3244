// psd3d-tinyworld <command> [--flags]: see command.h and docs/tiny-world.md.
#include <cstdio>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "tools/tinyworld/command.h"
#include "worker/pipeline/cpu_threads.h"
#include "worker/tinyworld/pack.h"

ABSL_FLAG(std::string, pack, "", "Pack folder to read and write (default: $PSD3D_PACK_DIR or models/tiny of the source tree)");
ABSL_FLAG(std::string, device, "", "cuda or cpu (default: cuda when available)");
ABSL_FLAG(uint64_t, seed, 1, "Base random seed of the run");
ABSL_FLAG(absl::Duration, time_budget, absl::Seconds(510),
          "A training chunk checkpoints and exits with code 3 after this long; run the same command to resume");
ABSL_FLAG(std::string, checkpoint_dir, "tinyworld-ckpt", "Folder for resumable training state");
ABSL_FLAG(std::string, out, "tinyworld-out", "Folder for figures, sample grids and logs");

namespace psd3d::tinyworld {

std::map<std::string, Command>& Commands() {
  static auto* commands = new std::map<std::string, Command>();
  return *commands;
}

bool RegisterCommand(const std::string& name, Command command) {
  Commands()[name] = std::move(command);
  return true;
}

at::Device FlagDevice() {
  const std::string d = absl::GetFlag(FLAGS_device);
  if (d.empty()) return torch::cuda::is_available() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  return at::Device(d);
}

}  // namespace psd3d::tinyworld

namespace {

std::string Usage() {
  std::string s =
      "psd3d-tinyworld <command> [flags]: trains, evaluates and samples the tiny model pack.\n"
      "Training runs in resumable chunks: a chunk stops at --time_budget with a checkpoint in\n"
      "--checkpoint_dir and exits 3; the same command resumes it.\n\ncommands:\n";
  for (const auto& [name, c] : psd3d::tinyworld::Commands()) absl::StrAppend(&s, "  ", name, "\t", c.help, "\n");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(Usage());
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2 || !psd3d::tinyworld::Commands().count(args[1])) {
    std::fprintf(stderr, "%s\n%s", args.size() < 2 ? "missing command" : absl::StrCat("unknown command: ", args.size() > 1 ? args[1] : "").c_str(),
                 Usage().c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_pack).empty()) absl::SetFlag(&FLAGS_pack, psd3d::tinyworld::DefaultPackDir());
  psd3d::UseAllCpuCores();
  return psd3d::tinyworld::Commands().at(args[1]).run();
}
