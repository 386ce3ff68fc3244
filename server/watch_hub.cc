#include "server/watch_hub.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/job_codec.h"
#include "common/log.h"

namespace psd3d {
namespace {

constexpr int kBatch = 256;


}  // namespace

WatchHub::WatchHub(RedisPool* pool, Keys keys) : pool_(pool), keys_(keys), log_(keys) {
  thread_ = std::thread([this] { Loop(); });
}

WatchHub::~WatchHub() {
  Shutdown();
  thread_.join();
}

int WatchHub::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subscribers_;
}

long long WatchHub::redis_reads() const { return reads_.load(); }

void WatchHub::Add(const std::string& job_id, const std::string& after_cursor, WatchSink* sink) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      sink->OnError(absl::UnavailableError("server is shutting down; retry on another server"));
      return;
    }
    pending_.push_back({job_id, after_cursor, sink});
    ++subscribers_;
  }
  Wake();
}

void WatchHub::Remove(WatchSink* sink) {
  absl::MutexLock lock(&mu_);
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->sink == sink) {
      pending_.erase(it);
      --subscribers_;
      return;
    }
  }
  for (auto& [id, f] : followed_) {
    for (auto it = f.subs.begin(); it != f.subs.end(); ++it) {
      if (it->sink == sink) {
        f.subs.erase(it);
        --subscribers_;
        return;
      }
    }
  }
}

void WatchHub::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    const absl::Status st = absl::UnavailableError("server is shutting down; resume from your last cursor");
    for (auto& p : pending_) p.sink->OnError(st);
    for (auto& [id, f] : followed_) {
      for (auto& s : f.subs) s.sink->OnError(st);
    }
    pending_.clear();
    followed_.clear();
    subscribers_ = 0;
  }
  Wake();
}

// Interrupts the blocking XREAD so new subscriptions are followed at once.
void WatchHub::Wake() {
  long long id;
  {
    absl::MutexLock lock(&mu_);
    id = reader_client_id_;
  }
  if (id < 0) return;
  auto conn = pool_->Acquire();
  if (conn.ok()) (void)(*conn)->Command({"CLIENT", "UNBLOCK", absl::StrCat(id)});
}

absl::StatusOr<std::vector<EventPtr>> WatchHub::Range(RedisConnection& conn, const std::string& job_id,
                                                      const std::string& after, const std::string& through) {
  std::vector<EventPtr> out;
  std::string from = after;
  for (;;) {
    reads_.fetch_add(1);
    auto r = conn.Command({"XRANGE", keys_.Events(job_id), "(" + from, through, "COUNT", absl::StrCat(kBatch)});
    if (!r.ok()) return r.status();
    for (const auto& e : r->elements) {
      auto ev = EventFromEntry(job_id, e);
      if (!ev.ok()) return ev.status();
      out.push_back(std::make_shared<const v1::JobEvent>(*std::move(ev)));
    }
    if (static_cast<int>(r->elements.size()) < kBatch) return out;
    from = out.back()->cursor();
  }
}

// Runs on the hub thread: validate, then attach the subscriber to the job's follower, replaying the
// events it lacks relative to the follower's position.
void WatchHub::Register(RedisConnection& conn, const Pending& p) {
  auto after = log_.CheckCursor(conn, p.job_id, p.cursor);
  std::optional<std::vector<EventPtr>> gap;
  std::string follower_cursor;
  {
    absl::MutexLock lock(&mu_);
    auto it = followed_.find(p.job_id);
    if (it != followed_.end()) follower_cursor = it->second.cursor;
  }
  if (after.ok() && !follower_cursor.empty() && StreamIdLess(*after, follower_cursor)) {
    auto g = Range(conn, p.job_id, *after, follower_cursor);
    if (!g.ok()) after = g.status();
    else gap = *std::move(g);
  }
  // A finished job with nothing after the cursor: end the stream now rather than follow forever.
  bool nothing_more = false;
  if (after.ok()) {
    auto st = conn.Command({"HGET", keys_.Job(p.job_id), "state"});
    if (st.ok() && IsTerminal(StateFromName(st->str))) {
      auto next = conn.Command({"XRANGE", keys_.Events(p.job_id), "(" + *after, "+", "COUNT", "1"});
      nothing_more = next.ok() && next->elements.empty();
    }
  }
  absl::MutexLock lock(&mu_);
  // The subscriber may have gone (client cancelled) while we read.
  auto pit = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& q) { return q.sink == p.sink; });
  if (pit == pending_.end()) return;
  pending_.erase(pit);
  if (!after.ok() || nothing_more) {
    --subscribers_;
    if (nothing_more) p.sink->OnEvents({}, true);
    else p.sink->OnError(after.status());
    return;
  }
  auto [it, inserted] = followed_.try_emplace(p.job_id);
  Followed& f = it->second;
  if (inserted) f.cursor = *after;
  Sub sub{p.sink, *after};
  if (gap && !gap->empty()) {
    // The follower may have moved on while we read: deliver only up to its position.
    std::vector<EventPtr> replay;
    for (auto& e : *gap) {
      if (!StreamIdLess(f.cursor, e->cursor())) replay.push_back(e);
    }
    if (!replay.empty()) {
      bool terminal = EventLog::IsTerminalEvent(*replay.back());
      p.sink->OnEvents(replay, terminal);
      if (terminal) {
        --subscribers_;
        return;
      }
      sub.skip_through = replay.back()->cursor();
    }
  }
  f.subs.push_back(sub);
}

void WatchHub::Deliver(const std::string& job_id, Followed& f, const std::vector<EventPtr>& events) {
  for (auto it = f.subs.begin(); it != f.subs.end();) {
    std::vector<EventPtr> mine;
    for (const auto& e : events) {
      if (StreamIdLess(it->skip_through, e->cursor())) mine.push_back(e);
    }
    bool terminal = !mine.empty() && EventLog::IsTerminalEvent(*mine.back());
    if (!mine.empty()) it->sink->OnEvents(mine, terminal);
    if (terminal) {
      it = f.subs.erase(it);
      --subscribers_;
    } else {
      ++it;
    }
  }
}

void WatchHub::Loop() {
  std::optional<RedisPool::Handle> reader;
  absl::Duration backoff = absl::Milliseconds(100);
  for (;;) {
    std::vector<Pending> todo;
    std::vector<std::pair<std::string, std::string>> streams;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      todo = pending_;
      for (auto it = followed_.begin(); it != followed_.end();) {
        if (it->second.subs.empty()) {
          followed_.erase(it++);
        } else {
          streams.emplace_back(it->first, it->second.cursor);
          ++it;
        }
      }
    }
    if (!reader || (*reader)->broken()) {
      reader.reset();
      auto c = pool_->Acquire();
      if (!c.ok()) {
        PSD3D_LOG(kWarning, "watch", "redis unavailable", {{"error", std::string(c.status().message())}});
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(2));
        continue;
      }
      reader.emplace(*std::move(c));
      long long id = (*reader)->client_id();
      absl::MutexLock lock(&mu_);
      reader_client_id_ = id;
    }
    backoff = absl::Milliseconds(100);
    for (const auto& p : todo) Register(**reader, p);
    if (!todo.empty()) continue;  // re-snapshot the followed set
    if (streams.empty()) {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !pending_.empty(); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
      continue;
    }
    std::vector<std::string> keys;
    for (const auto& [id, _] : streams) keys.push_back(keys_.Events(id));
    std::vector<absl::string_view> cmd = {"XREAD", "COUNT", "256", "BLOCK", "1000", "STREAMS"};
    for (const auto& k : keys) cmd.push_back(k);
    for (const auto& [_, cursor] : streams) cmd.push_back(cursor);
    reads_.fetch_add(1);
    auto r = (*reader)->Command(cmd);
    if (!r.ok()) {
      // CLIENT UNBLOCK makes XREAD return nil, not an error; errors mean Redis trouble.
      PSD3D_LOG(kWarning, "watch", "xread failed", {{"error", std::string(r.status().message())}});
      continue;
    }
    if (r->is_nil()) continue;
    for (const auto& stream : r->elements) {
      const std::string& key = stream.elements.at(0).str;
      std::string job_id = key.substr(keys_.prefix().size() + 4, key.size() - keys_.prefix().size() - 4 - 3);
      std::vector<EventPtr> events;
      for (const auto& e : stream.elements.at(1).elements) {
        auto ev = EventFromEntry(job_id, e);
        if (!ev.ok()) {
          PSD3D_LOG(kError, "watch", "undecodable event", {{"job", job_id}, {"error", std::string(ev.status().message())}});
          continue;
        }
        events.push_back(std::make_shared<const v1::JobEvent>(*std::move(ev)));
      }
      if (events.empty()) continue;
      absl::MutexLock lock(&mu_);
      auto it = followed_.find(job_id);
      if (it == followed_.end()) continue;
      it->second.cursor = events.back()->cursor();
      Deliver(job_id, it->second, events);
    }
  }
}

}  // namespace psd3d
