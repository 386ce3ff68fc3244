// Test fixtures that run the real thing: redis-server on a free port in a temporary directory (AOF
// on), and psd3d processes (server, test workers) as child processes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/redis_client.h"

namespace psd3d::testing {

int FreePort();
std::string MakeTempDir(const std::string& tag);

// A child process; stdout and stderr go to a log file in `dir`. It inherits the test's environment,
// changed by `env`: "NAME=VALUE" sets a variable, a bare "NAME" removes it.
class Process {
 public:
  Process(const std::string& name, const std::vector<std::string>& argv, const std::string& dir,
          const std::vector<std::string>& env = {});
  ~Process();  // SIGKILL if still running
  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; returns the exit status (or -signal), or -1000 on timeout.
  int Wait(absl::Duration timeout);
  std::string Log() const;
  // Waits until the log contains `text`.
  bool WaitForLog(const std::string& text, absl::Duration timeout) const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int status_ = 0;
  bool exited_ = false;
};

class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  RedisOptions options() const;
  void Kill();     // SIGKILL: only what AOF (appendfsync always) holds survives
  void Start();    // (re)starts on the same port and directory
  std::unique_ptr<RedisConnection> Connect() const;

 private:
  int port_;
  std::string dir_;
  std::unique_ptr<Process> proc_;
};

// GET http://127.0.0.1:port/path; the response body, or "" when the request fails.
std::string HttpGet(int port, const std::string& path);
// The value of an unlabelled Prometheus sample `name` in a text exposition, or -1 when absent.
double MetricValue(const std::string& exposition, const std::string& name);

// A throwaway PKI made with the openssl CLI in `dir`: a self-signed CA and a server certificate it
// signed for `names` (a subjectAltName value; P-256 keys, valid for a day).
struct TlsFiles {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
};
TlsFiles MakeTlsFiles(const std::string& dir, const std::string& names = "DNS:localhost,IP:127.0.0.1");

// Writes `contents` to `path` by way of a temporary file and rename (common/file_io.h; as a Secret volume
// update is atomic), so a reader sees the old file or the new one. Throws on failure.
void WriteFileAtomically(const std::string& path, const std::string& contents);

// Paths of the binaries under test (set by CMake).
std::string ServerBinary();
std::string TestWorkerBinary();
std::string CliBinary();
std::string WorkerBinary();  // psd3d-worker, the production worker with the PSD engine

// psd3d-server on a free port against `redis`; extra flags appended.
std::unique_ptr<Process> StartServer(const RedisServer& redis, const std::string& dir, int* port,
                                     const std::vector<std::string>& extra = {});
std::unique_ptr<Process> StartTestWorker(const RedisServer& redis, const std::string& dir, const std::string& name,
                                         const std::vector<std::string>& extra = {});

}  // namespace psd3d::testing
