#include "worker/tinyworld/tokenizer.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "worker/tinyworld/world.h"

namespace psd3d::tinyworld {
namespace {

std::vector<std::string> SplitWords(absl::string_view prompt) {
  std::string lower(prompt);
  for (char& c : lower) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == '.' || c == ',' || c == '!' || c == '?' || c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return absl::StrSplit(lower, ' ', absl::SkipEmpty());
}

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::Create(std::vector<std::string> words, int64_t max_length) {
  if (max_length < 3) return absl::InvalidArgumentError("tokenizer: max_length must be at least 3");
  Tokenizer t;
  t.max_length_ = max_length;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.empty() || w.find(' ') != std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("tokenizer: bad vocabulary word '", w, "'"));
    if (!t.ids_.emplace(w, static_cast<int64_t>(i) + 3).second)
      return absl::InvalidArgumentError(absl::StrCat("tokenizer: duplicate vocabulary word '", w, "'"));
  }
  t.words_ = std::move(words);
  if (t.ids_.count("a") && t.ids_.count("an")) t.ids_["an"] = t.ids_["a"];
  return t;
}

const Tokenizer& Tokenizer::TinyWorld() {
  static const Tokenizer* tokenizer = [] {
    std::vector<std::string> words = {"a", "an", "photo", "of", "that", "is", "one"};
    for (int c = 0; c < kNumColors; ++c) words.emplace_back(ColorName(static_cast<Color>(c)));
    for (int s = 0; s < kNumShapes; ++s) words.emplace_back(ShapeName(static_cast<Shape>(s)));
    return new Tokenizer(*Create(std::move(words), 10));
  }();
  return *tokenizer;
}

absl::StatusOr<std::vector<int64_t>> Tokenizer::Encode(absl::string_view prompt) const {
  const std::vector<std::string> words = SplitWords(prompt);
  if (static_cast<int64_t>(words.size()) > max_length_ - 2)
    return absl::InvalidArgumentError(absl::StrCat("prompt '", prompt, "' has ", words.size(),
                                                   " words; this model reads at most ", max_length_ - 2));
  std::vector<int64_t> ids = {kBos};
  for (const std::string& w : words) {
    auto it = ids_.find(w);
    if (it == ids_.end())
      return absl::InvalidArgumentError(absl::StrCat("unknown word '", w, "' in prompt '", prompt,
                                                     "' (known words: ", absl::StrJoin(words_, ", "), ")"));
    ids.push_back(it->second);
  }
  ids.push_back(kEos);
  ids.resize(max_length_, kPad);
  return ids;
}

absl::StatusOr<at::Tensor> Tokenizer::EncodeBatch(const std::vector<std::string>& prompts) const {
  std::vector<int64_t> all;
  all.reserve(prompts.size() * max_length_);
  for (const std::string& p : prompts) {
    absl::StatusOr<std::vector<int64_t>> ids = Encode(p);
    if (!ids.ok()) return ids.status();
    all.insert(all.end(), ids->begin(), ids->end());
  }
  return at::tensor(all, at::kLong).view({static_cast<int64_t>(prompts.size()), max_length_});
}

}  // namespace psd3d::tinyworld
