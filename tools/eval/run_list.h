// Which runs an evaluation makes: methods × prompts × seeds from the command line, numbered in one fixed
// order so that every process of a sharded evaluation agrees on which run is which, and the shard
// filter (--shard=i/n runs the runs whose index % n == i).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/guidance/guidance.h"

namespace psd3d::eval {

// One optimization job of the evaluation.
struct EvalRun {
  int64_t index = 0;  // position in the full list (shards split on it)
  GuidanceMethod method = GuidanceMethod::kSds;
  std::string prompt;
  uint64_t seed = 1;
  bool held_out = false;  // the prompt's subject is one the prior never saw
};

// The five methods in the report's order (SDS first: the baseline of the deltas).
const std::vector<GuidanceMethod>& AllMethods();

// A comma-separated list of method names (guidance.h), or "all"/"" for AllMethods(); duplicates are
// INVALID_ARGUMENT, and so are unknown names (naming them).
absl::StatusOr<std::vector<GuidanceMethod>> ParseMethods(absl::string_view list);

// "all" (the 48 subjects), "seen" (42) or "held_out" (6): one prompt per subject, tinyworld::MakePrompt
// with the first template, in tinyworld::AllSubjects() order. Anything else is a ';'-separated list of
// prompts, each of which must name one tiny-world subject (tinyworld::ParsePrompt's error otherwise).
absl::StatusOr<std::vector<std::string>> ParsePrompts(absl::string_view selection);

// Whether the prompt's subject is held out (the prompt must parse).
absl::StatusOr<bool> IsHeldOutPrompt(const std::string& prompt);

struct Shard {
  int64_t index = 0, count = 1;
  bool Contains(const EvalRun& run) const { return run.index % count == index; }
};
// "i/n" with 0 ≤ i < n; "" is 0/1 (everything).
absl::StatusOr<Shard> ParseShard(absl::string_view text);

// Every run, seed-major, then prompt, then method: a partial evaluation holds whole (prompt, seed)
// groups of all methods (what the paired deltas need), and consecutive runs, which shards take in turn,
// mix the methods' costs. Seeds are 1..seeds.
absl::StatusOr<std::vector<EvalRun>> MakeRuns(const std::vector<GuidanceMethod>& methods,
                                              const std::vector<std::string>& prompts, int64_t seeds);

// The identity of a run across files and processes: "method|prompt|seed".
std::string RunKey(absl::string_view method, absl::string_view prompt, uint64_t seed);
std::string RunKey(const EvalRun& run);

}  // namespace psd3d::eval
