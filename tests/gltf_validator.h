// Runs the Khronos glTF-Validator (tools/gltf-validate, an npm package) on GLB files from a test.
// Header-only, for the engine, pipeline and end-to-end tests alike; needs PSD3D_SOURCE_DIR.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace psd3d::testing {

// "" when node and the validator are installed, else what to run to install them.
inline std::string GltfValidatorMissing() {
  const std::string tool = std::string(PSD3D_SOURCE_DIR) + "/tools/gltf-validate";
  if (std::system("command -v node >/dev/null 2>&1") != 0)
    return "node is not installed: `apt-get install nodejs npm`, then `npm ci --prefix " + tool + "`";
  if (!std::ifstream(tool + "/node_modules/gltf-validator/package.json").good())
    return "the glTF validator is not installed: run `npm ci --prefix " + tool + "`";
  return "";
}

struct GltfValidation {
  int exit_code = -1;  // 0: no errors (nor warnings, with fail_on_warnings)
  std::string output;  // one "<file>: N errors, M warnings" line per file, then details
};

inline GltfValidation RunGltfValidator(const std::vector<std::string>& files, bool fail_on_warnings = false) {
  std::string cmd = "node " + std::string(PSD3D_SOURCE_DIR) + "/tools/gltf-validate/validate.js";
  if (fail_on_warnings) cmd += " --fail-on-warnings";
  for (const std::string& f : files) cmd += " " + f;
  cmd += " 2>&1";
  GltfValidation v;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return v;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) v.output.append(buf, n);
  const int status = pclose(pipe);
  v.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return v;
}

}  // namespace psd3d::testing
