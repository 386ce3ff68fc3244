#include "tests/fixtures.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/file_io.h"

namespace psd3d::testing {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = absl::StrCat(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", "/psd3d-", tag, "-XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

Process::Process(const std::string& name, const std::vector<std::string>& argv, const std::string& dir,
                 const std::vector<std::string>& env) {
  log_path_ = absl::StrCat(dir, "/", name, ".log");
  // Everything execve needs is built before fork: the child of a threaded process should not allocate.
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const absl::string_view var = *e;
    const absl::string_view var_name = var.substr(0, var.find('='));
    bool changed = false;
    for (const std::string& c : env) changed |= absl::string_view(c).substr(0, c.find('=')) == var_name;
    if (!changed) environment.emplace_back(var);
  }
  for (const std::string& c : env) {
    if (c.find('=') != std::string::npos) environment.push_back(c);
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    // Children must not inherit the test's blocked-signal mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
}

Process::~Process() {
  if (Running()) {
    Signal(SIGKILL);
    Wait(absl::Seconds(10));
  }
}

bool Process::Running() {
  if (exited_ || pid_ <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (!exited_ && pid_ > 0) kill(pid_, sig);
}

int Process::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() > deadline) return -1000;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return status_;
}

std::string Process::Log() const { return ReadFileToString(log_path_).value_or(""); }

bool Process::WaitForLog(const std::string& text, absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(Log(), text)) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

RedisServer::RedisServer() : port_(FreePort()), dir_(MakeTempDir("redis")) { Start(); }

RedisServer::~RedisServer() {
  if (proc_) Kill();
  std::system(absl::StrCat("rm -rf ", dir_).c_str());
}

RedisOptions RedisServer::options() const {
  RedisOptions o;
  o.address = address();
  return o;
}

void RedisServer::Start() {
  proc_ = std::make_unique<Process>(
      "redis",
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                               "--dir", dir_, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                               "--daemonize", "no"},
      dir_);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto c = RedisConnection::Connect(options());
    if (c.ok()) {
      auto r = (*c)->Command({"PING"});
      if (r.ok()) return;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  throw std::runtime_error("redis-server did not start: " + proc_->Log());
}

void RedisServer::Kill() {
  proc_->Signal(SIGKILL);
  proc_->Wait(absl::Seconds(10));
  proc_.reset();
}

std::unique_ptr<RedisConnection> RedisServer::Connect() const {
  auto c = RedisConnection::Connect(options());
  if (!c.ok()) throw std::runtime_error(std::string(c.status().message()));
  return *std::move(c);
}

namespace {

void Run(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

}  // namespace

TlsFiles MakeTlsFiles(const std::string& dir, const std::string& names) {
  TlsFiles f{dir + "/ca.crt", dir + "/server.crt", dir + "/server.key"};
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string quiet = absl::StrCat(" >>", dir, "/openssl.log 2>&1");
  Run(absl::StrCat("openssl req -x509 ", ec, " -keyout ", dir, "/ca.key -out ", f.ca_cert,
                   " -days 1 -subj '/CN=psd3d test CA'", quiet));
  Run(absl::StrCat("openssl req ", ec, " -keyout ", f.server_key, " -out ", dir, "/server.csr -subj '/CN=localhost'",
                   quiet));
  WriteFileAtomically(dir + "/server.ext", absl::StrCat("subjectAltName=", names,
                                                        "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"));
  Run(absl::StrCat("openssl x509 -req -in ", dir, "/server.csr -CA ", f.ca_cert, " -CAkey ", dir,
                   "/ca.key -CAcreateserial -days 1 -extfile ", dir, "/server.ext -out ", f.server_cert, quiet));
  return f;
}

void WriteFileAtomically(const std::string& path, const std::string& contents) {
  if (absl::Status st = psd3d::WriteFileAtomically(path, contents); !st.ok()) throw std::runtime_error(st.ToString());
}

std::string ServerBinary() { return PSD3D_SERVER_BIN; }
std::string TestWorkerBinary() { return PSD3D_TEST_WORKER_BIN; }
std::string CliBinary() { return PSD3D_CLI_BIN; }
std::string WorkerBinary() { return PSD3D_WORKER_BIN; }

std::unique_ptr<Process> StartServer(const RedisServer& redis, const std::string& dir, int* port,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {ServerBinary(), "--listen=127.0.0.1:0", "--metrics_address=",
                                   "--redis=" + redis.address(), "--shutdown_grace_seconds=0",
                                   "--housekeeping_ms=200"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  // A fresh log per start: a restarted server must not be found listening on its predecessor's port.
  static std::atomic<int> starts{0};
  const int n = ++starts;
  auto p = std::make_unique<Process>(n == 1 ? "server" : absl::StrCat("server-", n), argv, dir);
  const std::string marker = "listening on port ";
  if (!p->WaitForLog(marker, absl::Seconds(20))) throw std::runtime_error("server did not start: " + p->Log());
  std::string log = p->Log();
  size_t at = log.find(marker) + marker.size();
  if (!absl::SimpleAtoi(log.substr(at, log.find('\n', at) - at), port)) throw std::runtime_error("no port: " + log);
  return p;
}

std::unique_ptr<Process> StartTestWorker(const RedisServer& redis, const std::string& dir, const std::string& name,
                                         const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {TestWorkerBinary(), "--redis=" + redis.address(), "--name=" + name,
                                   "--metrics_address=", "--idle_wait_ms=100", "--progress_interval_ms=0",
                                   "--lease_seconds=3", "--renew_seconds=1", "--log_level=info"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Process>(name, argv, dir);
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

double MetricValue(const std::string& exposition, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, " ")) continue;
    double v;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return -1;
}

}  // namespace psd3d::testing
