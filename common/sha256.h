// SHA-256 (OpenSSL) as lowercase hex, incrementally or at once.
#pragma once

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

namespace psd3d {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  void Update(absl::string_view data);
  std::string HexDigest();  // finishes the hash

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string Sha256Hex(absl::string_view data);

}  // namespace psd3d
