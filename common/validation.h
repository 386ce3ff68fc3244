// Request validation for the public API. Every error is INVALID_ARGUMENT (or NOT_FOUND for an id that
// cannot exist) and its message starts with the offending field's path, e.g. "spec.prompt: ...".
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

struct ValidationLimits {
  std::vector<std::string> model_packs = {"tiny"};  // the first is the default
  int max_prompt_bytes = 1000;
  int max_steps = 100000;
  int min_resolution = 16;
  int max_resolution = 1024;
  int max_batch_views = 16;
  int max_labels = 16;
};

absl::Status ValidateSubmit(const v1::SubmitJobRequest& req, const ValidationLimits& limits);
// Fills defaults in place: method PSD, quality DRAFT, the default pack, a random seed when unset.
void ApplySubmitDefaults(v1::SubmitJobRequest* req, const ValidationLimits& limits);
absl::Status ValidateJobId(const std::string& id, const char* field = "job_id");
absl::Status ValidateListRequest(const v1::ListJobsRequest& req);
absl::Status ValidateArtifactName(const std::string& name);

}  // namespace psd3d
