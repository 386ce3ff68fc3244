// One function per subcommand. Each checks its positional arguments (ctx.args), reads its flags, makes
// its calls, prints the result and returns the process exit code (see errors.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "client/context.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d::cli {

int Submit(const Context& ctx);
int Get(const Context& ctx);
int List(const Context& ctx);
int Cancel(const Context& ctx);
int Watch(const Context& ctx);
int Download(const Context& ctx);
// Runs a job in this process on the PSD engine (no server); in builds with the engine only.
int Generate(const std::vector<std::string>& args);

// The request the job flags (--negative, --seed, --method, --quality, --pack, --steps, --resolution,
// --preview_interval, --priority, --label, --request_id) describe for `prompt`, validated.
absl::StatusOr<v1::SubmitJobRequest> BuildSubmitRequest(const std::string& prompt);
std::string OutputFlag();       // --output or -o
std::string PreviewsDirFlag();  // --previews_dir

}  // namespace psd3d::cli
