// A closed-vocabulary word tokenizer: the tiny world's text encoder reads words it was trained on and
// nothing else, so an unknown word is a clear error (naming it), never a silent <unk>.
//
// Text is lower-cased and split on whitespace; '.', ',', '!' and '?' are separators too. A prompt
// becomes <bos> w₁ … wₙ <eos> <pad> … of exactly max_length() ids. The article "an" reads as "a" when
// the vocabulary has both (the tiny models were trained on "a" alone, so "an orange cube" and
// "a orange cube" mean the same to them).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psd3d::tinyworld {

class Tokenizer {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2;

  // `words`: the vocabulary after the three special tokens (ids 3, 4, …), each a lower-case word
  // without spaces; duplicates or empty words are INVALID_ARGUMENT.
  static absl::StatusOr<Tokenizer> Create(std::vector<std::string> words, int64_t max_length);
  // The tiny world's vocabulary (template words, colors, shapes) with max_length 10.
  static const Tokenizer& TinyWorld();

  // Ids of one prompt, [max_length]. INVALID_ARGUMENT: "unknown word 'dragon' in prompt 'a dragon'
  // (known words: …)", or a prompt longer than max_length − 2 words.
  absl::StatusOr<std::vector<int64_t>> Encode(absl::string_view prompt) const;
  // [B, max_length] int64 for a batch of prompts; the first error stops it.
  absl::StatusOr<at::Tensor> EncodeBatch(const std::vector<std::string>& prompts) const;

  // The words after the special tokens, in id order (what a manifest stores).
  const std::vector<std::string>& words() const { return words_; }
  int64_t vocab_size() const { return static_cast<int64_t>(words_.size()) + 3; }
  int64_t max_length() const { return max_length_; }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t max_length_ = 0;
};

}  // namespace psd3d::tinyworld
