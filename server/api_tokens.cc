#include "server/api_tokens.h"

#include <openssl/crypto.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/sha256.h"

namespace psd3d {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxNameLength = 64;

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

// Visible ASCII except ':' only: the token is sent as "authorization: Bearer <token>", and ':' is
// the NAME:TOKEN separator, so a token with ':' could not be told from a named entry.
bool ValidToken(absl::string_view token) {
  for (char c : token) {
    if (c <= 0x20 || c >= 0x7f || c == ':') return false;
  }
  return token.size() >= kMinTokenLength;
}

}  // namespace

absl::StatusOr<std::vector<ApiTokens::Entry>> ApiTokens::Parse(absl::string_view text) {
  std::vector<Entry> entries;
  absl::flat_hash_set<std::string> names, digests;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    Entry e;
    absl::string_view token = line;
    // Any ':' makes the line NAME:TOKEN, split at the first one; tokens never contain ':' (so a
    // token's prefix can never be mistaken for a name and shown in logs and metrics).
    if (const size_t colon = line.find(':'); colon != absl::string_view::npos) {
      e.name = std::string(line.substr(0, colon));
      token = line.substr(colon + 1);
      if (!ValidName(e.name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "line ", line_no, ": the name before ':' must be 1 to ", kMaxNameLength, " of [A-Za-z0-9._-]"));
      }
    }
    if (!ValidToken(token)) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": a token must be at least ", kMinTokenLength,
                                                     " printable ASCII characters without spaces or ':'"));
    }
    e.sha256 = Sha256Hex(token);
    if (e.name.empty()) e.name = absl::StrCat("sha256-", e.sha256.substr(0, 8));
    if (!digests.insert(e.sha256).second) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": the same token appears twice"));
    }
    if (!names.insert(e.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": the name ", e.name, " appears twice"));
    }
    entries.push_back(std::move(e));
  }
  if (entries.empty()) return absl::InvalidArgumentError("no token in the file");
  return entries;
}

absl::StatusOr<std::unique_ptr<ApiTokens>> ApiTokens::Load(const std::string& path) {
  std::unique_ptr<ApiTokens> tokens(new ApiTokens(path));
  auto text = ReadFileToString(tokens->path_);
  if (!text.ok()) return text.status();
  auto entries = Parse(*text);
  if (!entries.ok()) return entries.status();
  absl::MutexLock lock(&tokens->mu_);
  tokens->entries_ = *std::move(entries);
  tokens->contents_sha256_ = Sha256Hex(*text);
  return tokens;
}

std::optional<std::string> ApiTokens::Find(absl::string_view token) const {
  // Digests have a fixed length whatever the token's, so each comparison takes the same time.
  const std::string digest = Sha256Hex(token);
  absl::ReaderMutexLock lock(&mu_);
  const Entry* match = nullptr;
  for (const Entry& e : entries_) {
    const bool equal = CRYPTO_memcmp(digest.data(), e.sha256.data(), digest.size()) == 0;
    if (equal) match = &e;
  }
  if (match == nullptr) return std::nullopt;
  return match->name;
}

absl::StatusOr<bool> ApiTokens::ReloadIfChanged() {
  // The whole file on every poll (it is small): comparing contents catches any update, also one that
  // keeps size and mtime, and a Kubernetes Secret volume's symlink swap is simply followed.
  auto text = ReadFileToString(path_);
  if (!text.ok()) return text.status();
  std::string digest = Sha256Hex(*text);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (digest == contents_sha256_) return false;
  }
  auto entries = Parse(*text);
  absl::MutexLock lock(&mu_);
  // Recorded even when parsing fails, so one bad version of the file is reported once, not every poll.
  contents_sha256_ = std::move(digest);
  if (!entries.ok()) return absl::InvalidArgumentError(absl::StrCat(path_, ": ", entries.status().message()));
  entries_ = *std::move(entries);
  return true;
}

std::vector<std::string> ApiTokens::names() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

}  // namespace psd3d
