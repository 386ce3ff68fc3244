// Identifiers: job ids sort by creation time (ULID, Crockford base32), so the job index is ordered by
// id alone; seeds are random 63-bit values.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

namespace psd3d {

std::string NewJobId();
bool IsValidJobId(absl::string_view id);
uint64_t RandomSeed();

}  // namespace psd3d
