#include "common/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <cerrno>
#include <openssl/sha.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace psd3d {
namespace {


std::string HexSha1(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

absl::StatusOr<RedisReply> Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_NIL:
      out.type = RedisReply::Type::kNil;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        auto e = Convert(r->element[i]);
        if (!e.ok()) return e.status();
        out.elements.push_back(*std::move(e));
      }
      break;
    case REDIS_REPLY_ERROR:
      return absl::FailedPreconditionError(absl::StrCat("redis: ", absl::string_view(r->str, r->len)));
    default:
      return absl::InternalError(absl::StrCat("redis: unexpected reply type ", r->type));
  }
  return out;
}

}  // namespace

std::string RedisReply::AsString() const {
  if (type == Type::kInteger) return absl::StrCat(integer);
  return str;
}

absl::StatusOr<long long> RedisReply::AsInteger() const {
  if (type == Type::kInteger) return integer;
  long long v;
  if ((type == Type::kString || type == Type::kStatus) && absl::SimpleAtoi(str, &v)) return v;
  return absl::InternalError(absl::StrCat("redis: expected an integer, got '", str, "'"));
}

RedisScript::RedisScript(const char* src) : source(src), sha1(HexSha1(source)) {
  // The embedder writes "\n-- <name>.lua\n" between the prelude and the script.
  size_t end = source.find(".lua\n");
  size_t begin = end == std::string::npos ? end : source.rfind("\n-- ", end);
  if (begin != std::string::npos) name = absl::string_view(source).substr(begin + 4, end - begin - 4);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const RedisOptions& o) {
  redisContext* ctx = nullptr;
  timeval tv = absl::ToTimeval(o.connect_timeout);
  if (absl::StartsWith(o.address, "unix:")) {
    ctx = redisConnectUnixWithTimeout(o.address.substr(5).c_str(), tv);
  } else {
    absl::string_view addr = o.address;
    size_t colon = addr.rfind(':');
    int port = 6379;
    std::string host(addr);
    if (colon != absl::string_view::npos) {
      host = std::string(addr.substr(0, colon));
      if (!absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
        return absl::InvalidArgumentError(absl::StrCat("redis address '", o.address, "': bad port"));
      }
    }
    ctx = redisConnectWithTimeout(host.c_str(), port, tv);
  }
  if (ctx == nullptr) return absl::ResourceExhaustedError("redis: cannot allocate a context");
  if (ctx->err) {
    std::string msg = absl::StrCat("redis ", o.address, ": ", ctx->errstr);
    redisFree(ctx);
    return absl::UnavailableError(msg);
  }
  timeval ct = absl::ToTimeval(o.command_timeout);
  redisSetTimeout(ctx, ct);
  std::unique_ptr<RedisConnection> conn(new RedisConnection(ctx));
  if (!o.password.empty()) {
    auto r = conn->Command({"AUTH", o.password});
    if (!r.ok()) return absl::PermissionDeniedError(absl::StrCat("redis AUTH: ", r.status().message()));
  }
  return conn;
}

RedisConnection::~RedisConnection() { redisFree(ctx_); }

absl::Status RedisConnection::Append(const std::vector<absl::string_view>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (auto a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data()) != REDIS_OK) {
    broken_ = true;
    return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr));
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisConnection::Read() {
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    broken_ = true;
    return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr[0] ? ctx_->errstr : "connection lost"));
  }
  auto* r = static_cast<redisReply*>(raw);
  auto out = Convert(r);
  freeReplyObject(r);
  return out;
}

absl::StatusOr<RedisReply> RedisConnection::Command(const std::vector<absl::string_view>& argv) {
  if (broken_) return absl::UnavailableError("redis: connection is broken");
  if (auto s = Append(argv); !s.ok()) return s;
  return Read();
}

std::vector<absl::StatusOr<RedisReply>> RedisConnection::Pipeline(
    const std::vector<std::vector<absl::string_view>>& cmds) {
  std::vector<absl::StatusOr<RedisReply>> out;
  for (const auto& c : cmds) {
    if (auto s = Append(c); !s.ok()) {
      out.assign(cmds.size(), s);
      return out;
    }
  }
  for (size_t i = 0; i < cmds.size(); ++i) out.push_back(Read());
  return out;
}

absl::StatusOr<RedisReply> RedisConnection::Eval(const RedisScript& script,
                                                 const std::vector<absl::string_view>& args) {
  std::vector<absl::string_view> argv = {"EVALSHA", script.sha1, "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = Command(argv);
  if (r.ok() || !absl::StrContains(r.status().message(), "NOSCRIPT")) {
    if (!r.ok() && r.status().code() == absl::StatusCode::kFailedPrecondition) {
      return absl::Status(r.status().code(), absl::StrCat("script ", script.name, ": ", r.status().message()));
    }
    return r;
  }
  argv[0] = "EVAL";
  argv[1] = script.source;
  return Command(argv);
}

bool RedisConnection::PeerClosed() {
  char c;
  ssize_t n = recv(ctx_->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  broken_ = true;  // EOF, reset, or unexpected unread bytes
  return true;
}

long long RedisConnection::client_id() {
  if (client_id_ < 0) {
    auto r = Command({"CLIENT", "ID"});
    if (r.ok()) client_id_ = r->integer;
  }
  return client_id_;
}

// A pooled connection may have been closed by a Redis restart or a proxy: drop it if the peer hung
// up (cheap peek), and PING it after a long idle spell, so callers never see a stale connection's error.
absl::StatusOr<RedisPool::Handle> RedisPool::Acquire() {
  for (;;) {
    Idle idle;
    {
      absl::MutexLock lock(&mu_);
      if (idle_.empty()) break;
      idle = std::move(idle_.back());
      idle_.pop_back();
    }
    if (idle.conn->PeerClosed()) continue;
    if (absl::Now() - idle.since < absl::Seconds(1) || idle.conn->Command({"PING"}).ok()) {
      return Handle(this, std::move(idle.conn));
    }
  }
  auto c = RedisConnection::Connect(options_);
  if (!c.ok()) return c.status();
  return Handle(this, *std::move(c));
}

void RedisPool::Return(std::unique_ptr<RedisConnection> conn) {
  if (conn->broken()) return;
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < max_idle_) idle_.push_back({std::move(conn), absl::Now()});
}

long long NowMillis() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace psd3d
