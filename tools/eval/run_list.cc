#include "tools/eval/run_list.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "worker/tinyworld/world.h"

namespace psd3d::eval {

const std::vector<GuidanceMethod>& AllMethods() {
  static const std::vector<GuidanceMethod> methods = {GuidanceMethod::kSds, GuidanceMethod::kDreamDpo,
                                                      GuidanceMethod::kRewardGradient,
                                                      GuidanceMethod::kPsdFixedNegative, GuidanceMethod::kPsd};
  return methods;
}

absl::StatusOr<std::vector<GuidanceMethod>> ParseMethods(absl::string_view list) {
  list = absl::StripAsciiWhitespace(list);
  if (list.empty() || list == "all") return AllMethods();
  std::vector<GuidanceMethod> out;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    absl::StatusOr<GuidanceMethod> m = ParseGuidanceMethod(absl::StripAsciiWhitespace(name));
    if (!m.ok()) return absl::InvalidArgumentError(absl::StrCat("--methods: ", m.status().message()));
    for (GuidanceMethod seen : out) {
      if (seen == *m) return absl::InvalidArgumentError(absl::StrCat("--methods: '", name, "' is given twice"));
    }
    out.push_back(*m);
  }
  if (out.empty()) return absl::InvalidArgumentError("--methods: no method given");
  return out;
}

absl::StatusOr<std::vector<std::string>> ParsePrompts(absl::string_view selection) {
  selection = absl::StripAsciiWhitespace(selection);
  std::vector<tinyworld::Subject> subjects;
  if (selection.empty() || selection == "all") subjects = tinyworld::AllSubjects();
  if (selection == "seen") subjects = tinyworld::SeenSubjects();
  if (selection == "held_out") subjects = tinyworld::HeldOutSubjects();
  std::vector<std::string> prompts;
  if (!subjects.empty()) {
    for (const tinyworld::Subject& s : subjects) prompts.push_back(tinyworld::MakePrompt(s));
    return prompts;
  }
  std::set<std::string> seen;
  for (absl::string_view p : absl::StrSplit(selection, ';', absl::SkipWhitespace())) {
    std::string prompt(absl::StripAsciiWhitespace(p));
    absl::StatusOr<tinyworld::Subject> subject = tinyworld::ParsePrompt(prompt);
    if (!subject.ok()) return absl::InvalidArgumentError(absl::StrCat("--prompts: '", prompt, "': ", subject.status().message()));
    if (!seen.insert(prompt).second) return absl::InvalidArgumentError(absl::StrCat("--prompts: '", prompt, "' is given twice"));
    prompts.push_back(std::move(prompt));
  }
  if (prompts.empty()) return absl::InvalidArgumentError("--prompts: no prompt given");
  return prompts;
}

absl::StatusOr<bool> IsHeldOutPrompt(const std::string& prompt) {
  absl::StatusOr<tinyworld::Subject> subject = tinyworld::ParsePrompt(prompt);
  if (!subject.ok()) return subject.status();
  return tinyworld::IsHeldOut(*subject);
}

absl::StatusOr<Shard> ParseShard(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return Shard{};
  std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  Shard s;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &s.index) || !absl::SimpleAtoi(parts[1], &s.count) ||
      s.count < 1 || s.index < 0 || s.index >= s.count) {
    return absl::InvalidArgumentError(absl::StrCat("--shard must be i/n with 0 ≤ i < n, got '", text, "'"));
  }
  return s;
}

absl::StatusOr<std::vector<EvalRun>> MakeRuns(const std::vector<GuidanceMethod>& methods,
                                              const std::vector<std::string>& prompts, int64_t seeds) {
  if (seeds < 1) return absl::InvalidArgumentError(absl::StrCat("--seeds must be ≥ 1, got ", seeds));
  std::vector<bool> held_out;
  for (const std::string& p : prompts) {
    absl::StatusOr<bool> h = IsHeldOutPrompt(p);
    if (!h.ok()) return absl::InvalidArgumentError(absl::StrCat("prompt '", p, "': ", h.status().message()));
    held_out.push_back(*h);
  }
  std::vector<EvalRun> runs;
  for (int64_t seed = 1; seed <= seeds; ++seed) {
    for (size_t p = 0; p < prompts.size(); ++p) {
      for (GuidanceMethod m : methods) {
        EvalRun r;
        r.index = static_cast<int64_t>(runs.size());
        r.method = m;
        r.prompt = prompts[p];
        r.seed = static_cast<uint64_t>(seed);
        r.held_out = held_out[p];
        runs.push_back(std::move(r));
      }
    }
  }
  return runs;
}

std::string RunKey(absl::string_view method, absl::string_view prompt, uint64_t seed) {
  return absl::StrCat(method, "|", prompt, "|", seed);
}

std::string RunKey(const EvalRun& run) { return RunKey(GuidanceMethodName(run.method), run.prompt, run.seed); }

}  // namespace psd3d::eval
