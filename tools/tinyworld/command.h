// psd3d-tinyworld: trains, evaluates and samples the tiny model pack (docs/tiny-world.md). Each
// subcommand lives in its own file and registers itself here; flags shared by all of them are below,
// flags of one subcommand are defined in its file with the subcommand's prefix (prior_*, reward_*).
#pragma once

#include <functional>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, pack);             // pack folder (default: models/tiny of the source tree)
ABSL_DECLARE_FLAG(std::string, device);           // "cuda", "cpu" or "" (cuda when available)
ABSL_DECLARE_FLAG(uint64_t, seed);                // base seed of a run
ABSL_DECLARE_FLAG(absl::Duration, time_budget);   // a training chunk stops and checkpoints after this
ABSL_DECLARE_FLAG(std::string, checkpoint_dir);   // where resumable training state lives
ABSL_DECLARE_FLAG(std::string, out);              // where figures, samples and logs go

namespace psd3d::tinyworld {

struct Command {
  std::string help;                 // one line for --help
  std::function<int()> run;         // exit code: 0 done, 1 failed, 3 chunk ended early (resume to go on)
};
std::map<std::string, Command>& Commands();
bool RegisterCommand(const std::string& name, Command command);

// Exit code of a training chunk that stopped at its time budget with a checkpoint written: run the same
// command again to resume.
inline constexpr int kExitResume = 3;

// The device named by --device.
at::Device FlagDevice();

}  // namespace psd3d::tinyworld

#define PSD3D_TINYWORLD_COMMAND_CONCAT_(a, b) a##b
#define PSD3D_TINYWORLD_COMMAND_CONCAT(a, b) PSD3D_TINYWORLD_COMMAND_CONCAT_(a, b)
#define PSD3D_TINYWORLD_COMMAND(name, help, fn)                                                      \
  static const bool PSD3D_TINYWORLD_COMMAND_CONCAT(psd3d_tinyworld_command_, __LINE__) =            \
      ::psd3d::tinyworld::RegisterCommand(name, ::psd3d::tinyworld::Command{help, fn})
