// Checks the command line before Abseil parses it. Abseil exits 1 on an unknown flag or a bad value,
// which here would read as "the job failed"; checking first lets such mistakes exit 2 (usage).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace psd3d::cli {

struct CheckedArgs {
  // The command line for absl::ParseCommandLine: flags in --name=value form, and repeated list flags
  // (--label, --set) merged into one comma list (Abseil would keep only the last).
  std::vector<std::string> argv;
  bool help = false;  // --help or one of its variants, which Abseil handles
};

// INVALID_ARGUMENT naming the flag for an unknown flag, a missing value or a value that does not parse.
absl::StatusOr<CheckedArgs> CheckArgs(int argc, char** argv);

}  // namespace psd3d::cli
