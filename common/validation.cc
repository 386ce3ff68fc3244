#include "common/validation.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"

namespace psd3d {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0 || i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

absl::Status CheckText(absl::string_view field, const std::string& text, int max_bytes, bool required) {
  if (required && absl::StripAsciiWhitespace(text).empty()) return Bad(field, "must not be empty");
  if (static_cast<int>(text.size()) > max_bytes) {
    return Bad(field, absl::StrCat("is ", text.size(), " bytes; at most ", max_bytes, " allowed"));
  }
  if (!IsUtf8(text)) return Bad(field, "is not valid UTF-8");
  for (unsigned char c : text) {
    if (c < 0x20 && c != '\t' && c != '\n') return Bad(field, "contains a control character");
  }
  return absl::OkStatus();
}

bool IsLabelKey(const std::string& k) {
  if (k.empty() || k.size() > 63 || !(k[0] >= 'a' && k[0] <= 'z')) return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateSubmit(const v1::SubmitJobRequest& req, const ValidationLimits& lim) {
  if (!req.has_spec()) return Bad("spec", "is required");
  const v1::JobSpec& s = req.spec();
  if (auto st = CheckText("spec.prompt", s.prompt(), lim.max_prompt_bytes, true); !st.ok()) return st;
  if (auto st = CheckText("spec.negative_prompt", s.negative_prompt(), lim.max_prompt_bytes, false); !st.ok()) {
    return st;
  }
  if (!v1::JobSpec::Method_IsValid(s.method())) {
    return Bad("spec.method", absl::StrCat("unknown value ", s.method()));
  }
  if (!v1::JobSpec::Quality_IsValid(s.quality())) {
    return Bad("spec.quality", absl::StrCat("unknown value ", s.quality()));
  }
  if (!s.model_pack().empty()) {
    bool known = false;
    for (const auto& p : lim.model_packs) known |= p == s.model_pack();
    if (!known) {
      return Bad("spec.model_pack", absl::StrCat("unknown pack '", s.model_pack(), "' (available: ",
                                                 absl::StrJoin(lim.model_packs, ", "), ")"));
    }
  }
  std::set<int> stages;
  for (int i = 0; i < s.stage_overrides_size(); ++i) {
    const auto& o = s.stage_overrides(i);
    std::string f = absl::StrCat("spec.stage_overrides[", i, "]");
    if (!v1::Stage_IsValid(o.stage()) || o.stage() == v1::STAGE_UNSPECIFIED) {
      return Bad(f + ".stage", absl::StrCat("must name a stage (got ", o.stage(), ")"));
    }
    if (o.stage() == v1::STAGE_EXPORT && (o.has_steps() || o.has_batch_views())) {
      return Bad(f + ".stage", "STAGE_EXPORT takes only render_resolution (the texture atlas size)");
    }
    if (!stages.insert(o.stage()).second) {
      return Bad(f + ".stage", absl::StrCat(v1::Stage_Name(o.stage()), " is overridden twice"));
    }
    if (o.has_steps() && (o.steps() < 1 || o.steps() > lim.max_steps)) {
      return Bad(f + ".steps", absl::StrCat("must be in [1, ", lim.max_steps, "], got ", o.steps()));
    }
    if (o.has_render_resolution()) {
      int r = o.render_resolution();
      if (r < lim.min_resolution || r > lim.max_resolution || r % 8 != 0) {
        return Bad(f + ".render_resolution", absl::StrCat("must be a multiple of 8 in [", lim.min_resolution,
                                                          ", ", lim.max_resolution, "], got ", r));
      }
    }
    if (o.has_batch_views() && (o.batch_views() < 1 || o.batch_views() > lim.max_batch_views)) {
      return Bad(f + ".batch_views",
                 absl::StrCat("must be in [1, ", lim.max_batch_views, "], got ", o.batch_views()));
    }
  }
  if (s.preview_interval() < 0 || s.preview_interval() > lim.max_steps) {
    return Bad("spec.preview_interval", absl::StrCat("must be in [0, ", lim.max_steps, "], got ",
                                                     s.preview_interval()));
  }
  if (req.priority() < 0 || req.priority() > 9) {
    return Bad("priority", absl::StrCat("must be in [0, 9], got ", req.priority()));
  }
  if (req.labels_size() > lim.max_labels) {
    return Bad("labels", absl::StrCat("at most ", lim.max_labels, " labels, got ", req.labels_size()));
  }
  for (const auto& [k, v] : req.labels()) {
    if (!IsLabelKey(k)) return Bad(absl::StrCat("labels[", k, "]"), "key must match [a-z][a-z0-9_.-]{0,62}");
    if (auto st = CheckText(absl::StrCat("labels[", k, "]"), v, 128, false); !st.ok()) return st;
  }
  if (req.request_id().size() > 128) return Bad("request_id", "at most 128 characters");
  for (unsigned char c : req.request_id()) {
    if (c < 0x21 || c > 0x7e) return Bad("request_id", "must be printable ASCII without spaces");
  }
  return absl::OkStatus();
}

void ApplySubmitDefaults(v1::SubmitJobRequest* req, const ValidationLimits& lim) {
  v1::JobSpec* s = req->mutable_spec();
  if (s->method() == v1::JobSpec::METHOD_UNSPECIFIED) s->set_method(v1::JobSpec::PSD);
  if (s->quality() == v1::JobSpec::QUALITY_UNSPECIFIED) s->set_quality(v1::JobSpec::DRAFT);
  if (s->model_pack().empty() && !lim.model_packs.empty()) s->set_model_pack(lim.model_packs.front());
  if (!s->has_seed()) s->set_seed(RandomSeed());
}

absl::Status ValidateJobId(const std::string& id, const char* field) {
  if (id.empty()) return Bad(field, "is required");
  if (!IsValidJobId(id)) return absl::NotFoundError(absl::StrCat("job '", id, "' does not exist"));
  return absl::OkStatus();
}

absl::Status ValidateListRequest(const v1::ListJobsRequest& req) {
  for (int i = 0; i < req.states_size(); ++i) {
    int s = req.states(i);
    if (!v1::Job::State_IsValid(s) || s == v1::Job::STATE_UNSPECIFIED) {
      return Bad(absl::StrCat("states[", i, "]"), absl::StrCat("unknown value ", s));
    }
  }
  if (!v1::ListJobsRequest::Order_IsValid(req.order())) {
    return Bad("order", absl::StrCat("unknown value ", req.order()));
  }
  if (req.page_size() < 0 || req.page_size() > 1000) {
    return Bad("page_size", absl::StrCat("must be in [0, 1000], got ", req.page_size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateArtifactName(const std::string& name) {
  if (name.empty()) return Bad("name", "is required");
  if (name.size() > 128 || name[0] == '@' || name.find('/') != std::string::npos) {
    return Bad("name", absl::StrCat("'", name, "' is not an artifact name"));
  }
  return absl::OkStatus();
}

}  // namespace psd3d
