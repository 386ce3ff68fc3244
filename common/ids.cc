#include "common/ids.h"

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "common/redis_client.h"

namespace psd3d {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

absl::Mutex g_mu;
// The last id handed out, for monotonic ids within one millisecond.
uint64_t g_last_ms ABSL_GUARDED_BY(g_mu) = 0;
uint64_t g_last_hi ABSL_GUARDED_BY(g_mu) = 0;
uint64_t g_last_lo ABSL_GUARDED_BY(g_mu) = 0;
absl::BitGen& Gen() {
  static absl::BitGen gen;
  return gen;
}

}  // namespace

std::string NewJobId() {
  // Monotonic within a millisecond (the ULID rule): ids made by one process in the same millisecond
  // increase, so queue ties on enqueue time and the job index keep submission order.
  uint64_t ms = static_cast<uint64_t>(NowMillis());
  uint64_t hi, lo;
  {
    absl::MutexLock lock(&g_mu);
    if (ms <= g_last_ms) {
      ms = g_last_ms;
      hi = g_last_hi;
      lo = g_last_lo + 1;
      if (lo == 0) hi = (hi + 1) & 0xFFFF;
    } else {
      hi = absl::Uniform<uint64_t>(Gen()) & 0x7FFF;  // top bit clear leaves room to increment
      lo = absl::Uniform<uint64_t>(Gen());
    }
    g_last_ms = ms;
    g_last_hi = hi;
    g_last_lo = lo;
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
