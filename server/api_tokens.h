// The API tokens the server accepts, read from a file (in Kubernetes, a mounted Secret) and re-read
// when it changes, so tokens rotate without a restart.
//
// File format, one entry per line; blank lines and lines starting with '#' are ignored:
//   NAME:TOKEN    NAME labels the token in metrics and logs ([A-Za-z0-9._-], at most 64 characters)
//   TOKEN         unnamed: labelled "sha256-" + the first 8 hex digits of the token's SHA-256
// A line with a ':' is always NAME:TOKEN, split at its first ':'. A token is at least 16 printable
// ASCII characters without spaces (it travels as an HTTP/2 header value) and without ':' (so no part
// of a token is ever taken for a name and shown in logs or metrics). Duplicate tokens or names are
// errors, and so is a file without any token.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace psd3d {

class ApiTokens {
 public:
  struct Entry {
    std::string name;
    std::string sha256;  // hex digest of the token; the token itself is not kept
  };
  // Parses a tokens file's contents. Errors name the line, never the token.
  static absl::StatusOr<std::vector<Entry>> Parse(absl::string_view text);

  // Reads `path` (fails when it cannot be read or parsed).
  static absl::StatusOr<std::unique_ptr<ApiTokens>> Load(const std::string& path);

  // The name of the entry whose token equals `token`, or nullopt. Compares the token's digest with
  // every entry's in constant time, without stopping at a match, so the time taken reveals neither
  // the matching entry nor how much of a token was right.
  std::optional<std::string> Find(absl::string_view token) const;

  // Re-reads the file and, if its contents changed since the last read, replaces the tokens; true when
  // it did. On a file that does not parse the previous tokens stay in force and the error is returned
  // (once per version of the file; an unreadable file is an error on every call).
  absl::StatusOr<bool> ReloadIfChanged();

  std::vector<std::string> names() const;
  const std::string& path() const { return path_; }

 private:
  explicit ApiTokens(std::string path) : path_(std::move(path)) {}
  const std::string path_;
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::string contents_sha256_ ABSL_GUARDED_BY(mu_);  // of the last file read, parsed or not
};

}  // namespace psd3d
