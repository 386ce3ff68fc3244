#include "client/names.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace psd3d::cli {
namespace {

using google::protobuf::EnumDescriptor;

std::string Name(const EnumDescriptor* d, absl::string_view prefix, int number) {
  const auto* v = d->FindValueByNumber(number);
  if (v == nullptr) return absl::StrCat("unknown(", number, ")");
  absl::string_view name = v->name();
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

absl::StatusOr<int> Parse(const EnumDescriptor* d, absl::string_view prefix, absl::string_view text) {
  const auto* v = d->FindValueByName(absl::StrCat(prefix, absl::AsciiStrToUpper(text)));
  if (v != nullptr && v->number() != 0) return v->number();
  std::vector<std::string> names;
  for (int i = 0; i < d->value_count(); ++i) {
    if (d->value(i)->number() != 0) names.push_back(Name(d, prefix, d->value(i)->number()));
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not one of ", absl::StrJoin(names, ", ")));
}

template <typename E>
absl::StatusOr<E> ParseAs(const EnumDescriptor* d, absl::string_view prefix, absl::string_view text) {
  auto n = Parse(d, prefix, text);
  if (!n.ok()) return n.status();
  return static_cast<E>(*n);
}

}  // namespace

std::string StageName(v1::Stage stage) { return Name(v1::Stage_descriptor(), "STAGE_", stage); }
std::string MethodName(v1::JobSpec::Method method) { return Name(v1::JobSpec::Method_descriptor(), "", method); }
std::string QualityName(v1::JobSpec::Quality quality) { return Name(v1::JobSpec::Quality_descriptor(), "", quality); }
std::string StateName(v1::Job::State state) {
  return absl::AsciiStrToUpper(Name(v1::Job::State_descriptor(), "", state));
}

absl::StatusOr<v1::Stage> ParseStage(absl::string_view text) {
  return ParseAs<v1::Stage>(v1::Stage_descriptor(), "STAGE_", text);
}
absl::StatusOr<v1::JobSpec::Method> ParseMethod(absl::string_view text) {
  return ParseAs<v1::JobSpec::Method>(v1::JobSpec::Method_descriptor(), "", text);
}
absl::StatusOr<v1::JobSpec::Quality> ParseQuality(absl::string_view text) {
  return ParseAs<v1::JobSpec::Quality>(v1::JobSpec::Quality_descriptor(), "", text);
}
absl::StatusOr<v1::Job::State> ParseState(absl::string_view text) {
  return ParseAs<v1::Job::State>(v1::Job::State_descriptor(), "", text);
}

bool IsTerminal(v1::Job::State state) {
  return state == v1::Job::SUCCEEDED || state == v1::Job::FAILED || state == v1::Job::CANCELLED;
}

}  // namespace psd3d::cli
