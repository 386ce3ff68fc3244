// Unit tests of request validation: every rejection names the field.
#include "common/validation.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace psd3d {
namespace {

v1::SubmitJobRequest Good() {
  v1::SubmitJobRequest r;
  r.mutable_spec()->set_prompt("a red cube");
  return r;
}

void ExpectBad(const v1::SubmitJobRequest& r, const std::string& field) {
  absl::Status s = ValidateSubmit(r, ValidationLimits{});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s.message();
}

TEST(Validation, AcceptsMinimalRequest) { EXPECT_TRUE(ValidateSubmit(Good(), ValidationLimits{}).ok()); }

TEST(Validation, RejectsEachBadFieldByName) {
  auto r = Good();
  r.clear_spec();
  ExpectBad(r, "spec");
  r = Good();
  r.mutable_spec()->set_prompt("   ");
  ExpectBad(r, "spec.prompt");
  r.mutable_spec()->set_prompt(std::string(1001, 'a'));
  ExpectBad(r, "spec.prompt");
  r.mutable_spec()->set_prompt("bad \xff utf8");
  ExpectBad(r, "spec.prompt");
  r = Good();
  r.mutable_spec()->set_negative_prompt(std::string(2000, 'b'));
  ExpectBad(r, "spec.negative_prompt");
  r = Good();
  r.mutable_spec()->set_method(static_cast<v1::JobSpec::Method>(42));
  ExpectBad(r, "spec.method");
  r = Good();
  r.mutable_spec()->set_quality(static_cast<v1::JobSpec::Quality>(9));
  ExpectBad(r, "spec.quality");
  r = Good();
  r.mutable_spec()->set_model_pack("sd21");
  ExpectBad(r, "spec.model_pack");
  r = Good();
  r.mutable_spec()->add_stage_overrides()->set_steps(10);
  ExpectBad(r, "spec.stage_overrides[0].stage");
  r = Good();
  auto* o = r.mutable_spec()->add_stage_overrides();
  o->set_stage(v1::STAGE_COARSE);
  o->set_steps(0);
  ExpectBad(r, "spec.stage_overrides[0].steps");
  o->set_steps(100);
  o->set_render_resolution(100);
  ExpectBad(r, "spec.stage_overrides[0].render_resolution");
  o->set_render_resolution(2048);
  ExpectBad(r, "spec.stage_overrides[0].render_resolution");
  o->set_render_resolution(64);
  EXPECT_TRUE(ValidateSubmit(r, ValidationLimits{}).ok());
  r.mutable_spec()->add_stage_overrides()->set_stage(v1::STAGE_COARSE);
  ExpectBad(r, "spec.stage_overrides[1].stage");
  r = Good();
  r.mutable_spec()->set_preview_interval(-1);
  ExpectBad(r, "spec.preview_interval");
  r = Good();
  r.set_priority(10);
  ExpectBad(r, "priority");
  r = Good();
  (*r.mutable_labels())["Bad Key"] = "x";
  ExpectBad(r, "labels[Bad Key]");
  r = Good();
  r.set_request_id("has space");
  ExpectBad(r, "request_id");
}

TEST(Validation, DefaultsFillMethodQualityPackAndSeed) {
  auto r = Good();
  ApplySubmitDefaults(&r, ValidationLimits{});
  EXPECT_EQ(r.spec().method(), v1::JobSpec::PSD);
  EXPECT_EQ(r.spec().quality(), v1::JobSpec::DRAFT);
  EXPECT_EQ(r.spec().model_pack(), "tiny");
  EXPECT_TRUE(r.spec().has_seed());
  auto keep = Good();
  keep.mutable_spec()->set_seed(7);
  ApplySubmitDefaults(&keep, ValidationLimits{});
  EXPECT_EQ(keep.spec().seed(), 7u);
}

TEST(Validation, JobIdsAndListRequests) {
  EXPECT_EQ(ValidateJobId("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateJobId("nope").code(), absl::StatusCode::kNotFound);
  v1::ListJobsRequest l;
  l.set_page_size(5000);
  EXPECT_EQ(ValidateListRequest(l).code(), absl::StatusCode::kInvalidArgument);
  l.set_page_size(10);
  l.add_states(static_cast<v1::Job::State>(77));
  EXPECT_TRUE(absl::StartsWith(ValidateListRequest(l).message(), "states[0]"));
}

}  // namespace
}  // namespace psd3d
