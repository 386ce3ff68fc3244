// A small synchronous Redis client over hiredis: owned replies, Status errors, Lua scripts by EVALSHA,
// and a thread-safe connection pool. Connections that hit an I/O error are dropped, not reused.
#pragma once

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisContext;

namespace psd3d {

struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus };
  Type type = Type::kNil;
  std::string str;      // kString, kStatus
  long long integer = 0;  // kInteger
  std::vector<RedisReply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
  // String or integer rendered as text; empty for nil.
  std::string AsString() const;
  // Integer, or a string holding one; error otherwise.
  absl::StatusOr<long long> AsInteger() const;
};

struct RedisOptions {
  std::string address = "127.0.0.1:6379";  // host:port or unix:/path/to.sock
  std::string password;                   // AUTH when set
  absl::Duration connect_timeout = absl::Seconds(3);
  absl::Duration command_timeout = absl::Seconds(10);  // must exceed any BLOCK/BLPOP timeout used
};

// A Lua script, identified by the SHA-1 of its text.
struct RedisScript {
  explicit RedisScript(const char* source);
  absl::string_view name;  // taken from the "-- <name>.lua" marker, for error messages
  std::string source;
  std::string sha1;
};

class RedisConnection {
 public:
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(const RedisOptions& options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Redis error replies become FAILED_PRECONDITION carrying Redis' message; I/O errors UNAVAILABLE
  // (and mark the connection broken).
  absl::StatusOr<RedisReply> Command(const std::vector<absl::string_view>& argv);
  // Runs a script: EVALSHA, falling back to EVAL when the server does not have it cached.
  absl::StatusOr<RedisReply> Eval(const RedisScript& script, const std::vector<absl::string_view>& args);
  // Sends several commands in one round trip; one result per command.
  std::vector<absl::StatusOr<RedisReply>> Pipeline(const std::vector<std::vector<absl::string_view>>& cmds);

  bool broken() const { return broken_; }
  // True when the server closed or reset the connection (a non-blocking peek; no round trip).
  bool PeerClosed();
  long long client_id();  // CLIENT ID, cached

 private:
  explicit RedisConnection(redisContext* ctx) : ctx_(ctx) {}
  absl::Status Append(const std::vector<absl::string_view>& argv);
  absl::StatusOr<RedisReply> Read();
  redisContext* ctx_;
  bool broken_ = false;
  long long client_id_ = -1;
};

class RedisPool {
 public:
  explicit RedisPool(RedisOptions options, int max_idle = 16) : options_(std::move(options)), max_idle_(max_idle) {}
  const RedisOptions& options() const { return options_; }

  class Handle {
   public:
    Handle(RedisPool* pool, std::unique_ptr<RedisConnection> c) : pool_(pool), conn_(std::move(c)) {}
    Handle(Handle&&) = default;
    ~Handle() { if (conn_) pool_->Return(std::move(conn_)); }
    RedisConnection* operator->() { return conn_.get(); }
    RedisConnection& operator*() { return *conn_; }
   private:
    RedisPool* pool_;
    std::unique_ptr<RedisConnection> conn_;
  };

  absl::StatusOr<Handle> Acquire();

 private:
  void Return(std::unique_ptr<RedisConnection> conn);
  struct Idle {
    std::unique_ptr<RedisConnection> conn;
    absl::Time since;
  };
  RedisOptions options_;
  int max_idle_;
  absl::Mutex mu_;
  std::vector<Idle> idle_ ABSL_GUARDED_BY(mu_);
};

// Milliseconds since the Unix epoch, the time unit of every Redis field psd3d writes.
long long NowMillis();

}  // namespace psd3d
