#include "common/ids.h"

#include <random>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "common/redis_client.h"

namespace psd3d {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

absl::Mutex g_mu;
absl::BitGen& Gen() {
  static absl::BitGen gen;
  return gen;
}

}  // namespace

std::string NewJobId() {
  uint64_t ms = static_cast<uint64_t>(NowMillis());
  uint64_t hi, lo;
  {
    absl::MutexLock lock(&g_mu);
    hi = absl::Uniform<uint64_t>(Gen());
    lo = absl::Uniform<uint64_t>(Gen());
  }
  // 48 bits of time, 80 bits of randomness, 26 characters.
  std::string out(26, '0');
  for (int i = 9; i >= 0; --i) {
    out[i] = kAlphabet[ms & 31];
    ms >>= 5;
  }
  // 80 random bits: 16 from hi, 64 from lo.
  unsigned __int128 r = (static_cast<unsigned __int128>(hi & 0xFFFF) << 64) | lo;
  for (int i = 25; i >= 10; --i) {
    out[i] = kAlphabet[static_cast<int>(r & 31)];
    r >>= 5;
  }
  return out;
}

bool IsValidJobId(absl::string_view id) {
  if (id.size() != 26) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
    if (!ok) return false;
  }
  return id[0] <= '7';
}

uint64_t RandomSeed() {
  absl::MutexLock lock(&g_mu);
  return absl::Uniform<uint64_t>(Gen()) >> 1;
}

}  // namespace psd3d
