// The Lua scripts behind every multi-key transition (sources in common/lua/, embedded at build time).
// Each script's header comment documents its arguments and replies.
#pragma once

#include "common/redis_client.h"

namespace psd3d::lua {

extern const char* const kSubmit;
extern const char* const kPromote;
extern const char* const kClaim;
extern const char* const kRenew;
extern const char* const kEmit;
extern const char* const kBlobAppend;
extern const char* const kBlobCommit;
extern const char* const kFinish;
extern const char* const kRetry;
extern const char* const kRelease;
extern const char* const kCancel;

// Parsed once; SHA-1s computed at first use.
struct Scripts {
  RedisScript submit{kSubmit}, promote{kPromote}, claim{kClaim}, renew{kRenew}, emit{kEmit},
      blob_append{kBlobAppend}, blob_commit{kBlobCommit}, finish{kFinish}, retry{kRetry},
      release{kRelease}, cancel{kCancel};
};
const Scripts& All();

}  // namespace psd3d::lua
