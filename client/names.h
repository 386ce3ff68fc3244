// The CLI's spellings of the API's enums: lowercase, without the type prefix ("coarse" for STAGE_COARSE,
// "reward_gradient", "queued"). Parsing is case-insensitive and never accepts the "unspecified" value.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d::cli {

std::string StageName(v1::Stage stage);
std::string MethodName(v1::JobSpec::Method method);
std::string QualityName(v1::JobSpec::Quality quality);
std::string StateName(v1::Job::State state);  // upper case, as people know them: "SUCCEEDED"

// Errors say what was wrong and list the valid names, e.g. "'foo' is not one of psd, sds, ...".
absl::StatusOr<v1::Stage> ParseStage(absl::string_view text);
absl::StatusOr<v1::JobSpec::Method> ParseMethod(absl::string_view text);
absl::StatusOr<v1::JobSpec::Quality> ParseQuality(absl::string_view text);
absl::StatusOr<v1::Job::State> ParseState(absl::string_view text);

bool IsTerminal(v1::Job::State state);

}  // namespace psd3d::cli
