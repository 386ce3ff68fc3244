// The API's stages as plain lowercase words, for metric labels and file names.
#pragma once

#include <string>

#include "absl/strings/ascii.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

// STAGE_COARSE → "coarse", STAGE_EXPORT → "export".
inline std::string StageWord(v1::Stage stage) {
  std::string name = absl::AsciiStrToLower(v1::Stage_Name(stage));
  if (name.rfind("stage_", 0) == 0) name.erase(0, 6);
  return name;
}

}  // namespace psd3d
