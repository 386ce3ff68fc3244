// Resumable, verified artifact downloads.
#pragma once

#include <string>

#include "client/context.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d::cli {

// Downloads artifact `name` of the job to `path` by way of "<path>.part": an existing .part is resumed
// from its size, and the file gets its final name only once its SHA-256 matches the server's (a
// mismatching .part is deleted). On success fills `downloaded` (name, size, sha256) and returns kExitOk;
// otherwise reports the error and returns its exit code.
int DownloadArtifact(const Context& ctx, const std::string& job_id, const std::string& name, const std::string& path,
                     v1::Artifact* downloaded);

}  // namespace psd3d::cli
