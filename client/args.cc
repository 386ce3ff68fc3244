#include "client/args.h"

#include <algorithm>
#include <iterator>
#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace psd3d::cli {
namespace {

// Handled by Abseil's parser itself; they are not registered flags.
constexpr absl::string_view kUsageFlags[] = {"help",   "helpfull",  "helpshort", "helppackage",
                                             "helpon", "helpmatch", "version",   "only_check_args"};

}  // namespace

absl::StatusOr<CheckedArgs> CheckArgs(int argc, char** argv) {
  CheckedArgs out;
  std::map<std::string, std::vector<std::string>> lists;  // repeated list flags (--label, --set), merged
  bool positional_only = false;  // after "--"
  for (int i = 0; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (i == 0 || positional_only || arg == "--" || arg.size() < 2 || arg[0] != '-') {
      out.argv.emplace_back(arg);
      positional_only |= arg == "--";
      continue;
    }
    const absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    const absl::string_view name = body.substr(0, eq);
    if (std::find(std::begin(kUsageFlags), std::end(kUsageFlags), name) != std::end(kUsageFlags)) {
      out.argv.emplace_back(arg);
      out.help |= absl::StartsWith(name, "help");
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      // --noNAME turns a bool flag off.
      const absl::CommandLineFlag* negated =
          absl::StartsWith(name, "no") ? absl::FindCommandLineFlag(name.substr(2)) : nullptr;
      if (negated == nullptr || !negated->IsOfType<bool>() || eq != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg.substr(0, arg.find('='))));
      }
      out.argv.emplace_back(arg);
      continue;
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(body.substr(eq + 1));
    } else if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) return absl::InvalidArgumentError(error);
    if (flag->IsOfType<std::vector<std::string>>()) {
      lists[std::string(name)].push_back(value);
    } else {
      out.argv.push_back(absl::StrCat("--", name, "=", value));
    }
  }
  // Right after the program name, so that they stay before any "--".
  for (const auto& [name, values] : lists)
    out.argv.insert(out.argv.begin() + 1, absl::StrCat("--", name, "=", absl::StrJoin(values, ",")));
  return out;
}

}  // namespace psd3d::cli
