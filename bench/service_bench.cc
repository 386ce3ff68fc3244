// psd3d-service-bench: the service benchmarks of issue 2, printed as one table.
//
// Starts its own redis-server (the test fixture: AOF on, appendfsync always) and psd3d-server, then
// measures (1) SubmitJob throughput and latency against concurrency, next to redis-benchmark's rate
// on the same redis-server, (2) worker-to-watcher event latency, (3) server memory per open WatchJob
// stream, and (4) how many Redis reads the WatchHub makes for many watchers of one job.
// Everything (Redis, server, worker, this client) shares the same machine and cores: the figures are
// for the whole service on one box, not for the server alone. See docs/benchmarks.md.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/lua_scripts.h"
#include "psd3d/v1/generation.grpc.pb.h"
#include "tests/fixtures.h"

ABSL_FLAG(std::string, clients, "1,2,4,8,16,32,64", "Concurrency levels of the submit benchmark (client threads)");
ABSL_FLAG(double, level_seconds, 2.0, "Duration of each submit concurrency level");
ABSL_FLAG(int, channels, 8, "gRPC channels (TCP connections) the submit threads are spread over, round robin");
ABSL_FLAG(std::string, fsync, "always,everysec",
          "Redis appendfsync settings to run the submit and event benchmarks under, in order "
          "(the fixture, like the tests, starts redis with 'always')");
ABSL_FLAG(int64_t, max_queue, 100000000, "psd3d-server --max_queue: high enough that admission never rejects");
ABSL_FLAG(std::string, redis_benchmark, "/usr/bin/redis-benchmark", "redis-benchmark binary; empty skips it");
ABSL_FLAG(int, redis_benchmark_requests, 50000, "redis-benchmark -n");
ABSL_FLAG(int, redis_benchmark_clients, 50, "redis-benchmark -c");
ABSL_FLAG(int, event_steps, 150, "Event latency: test-engine steps per stage (3 stages, one progress event per step)");
ABSL_FLAG(int, event_step_ms, 5, "Event latency: test-engine sleep per step");
ABSL_FLAG(int, watch_streams, 1000, "Memory: WatchJob streams to hold open");
ABSL_FLAG(std::string, watch_jobs, "10,1000", "Memory: the streams are spread over this many queued jobs (one run per value)");
ABSL_FLAG(int, watch_channels, 10, "Memory: gRPC channels the streams are spread over");
ABSL_FLAG(int, hub_watchers, 100, "WatchHub: watchers of one running job");
ABSL_FLAG(int, hub_steps, 50, "WatchHub: test-engine steps per stage of the watched job");

namespace psd3d::bench {
namespace {

using testing::Process;
using testing::RedisServer;
using Stub = v1::GenerationService::Stub;
using Clock = std::chrono::steady_clock;

// Targets from issue 2.
constexpr double kTargetSubmitsPerSecond = 2000;
constexpr double kTargetSubmitP99Ms = 20;
constexpr double kTargetEventP99Ms = 50;
// Redis latency events (AOF fsync, slow commands) at least this long are reported beside the figures.
constexpr int kStallThresholdMs = 5;

// ---------------------------------------------------------------------------------------------------
// Small utilities

// Thrown on any failure; unwinding stops the child processes (their destructors SIGKILL them).
[[noreturn]] void Die(const std::string& what) { throw std::runtime_error(what); }

// Nearest-rank percentile (q in [0, 1]) of unsorted samples; 0 when there are none.
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::vector<int> ParseInts(const std::string& csv, const char* flag) {
  std::vector<int> out;
  for (absl::string_view part : absl::StrSplit(csv, ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1) Die(absl::StrCat("--", flag, ": '", csv, "' is not a list of positive integers"));
    out.push_back(v);
  }
  return out;
}

// Resident set size of a process in KiB, from /proc (VmRSS).
long long RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "VmRSS:")) continue;
    long long kib = 0;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 2 && absl::SimpleAtoi(f[1], &kib)) return kib;
  }
  return -1;
}

// CPU seconds (user + system, all threads, exited ones included) a process has used, from
// /proc/<pid>/stat: the fields after the parenthesised command name, utime and stime in clock ticks.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<absl::string_view> f = absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
  long long utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) return 0;
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// The first line of /proc/<file> that starts with `key`, after the key; empty when absent.
std::string ProcField(const std::string& file, const std::string& key) {
  std::ifstream in("/proc/" + file);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, key)) return std::string(absl::StripAsciiWhitespace(line.substr(key.size())));
  }
  return "";
}

// CPU seconds the whole machine has spent busy (all cores, all processes; /proc/stat without idle and
// iowait), and its capacity so far (busy + idle).
struct MachineCpu {
  double busy = 0, total = 0;
};
MachineCpu MachineCpuNow() {
  std::vector<std::string> f = absl::StrSplit(ProcField("stat", "cpu "), ' ', absl::SkipEmpty());
  long long busy = 0, total = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    long long v = 0;
    (void)absl::SimpleAtoi(f[i], &v);
    total += v;
    if (i != 3 && i != 4) busy += v;
  }
  const double tick = sysconf(_SC_CLK_TCK);
  return {busy / tick, total / tick};
}

// Other work on the machine (a compiler, another benchmark) skews every figure, so the harness
// accounts for it: the share of the machine's CPU capacity used between `from` and now by processes
// other than those whose CPU seconds over the same span are `ours`.
double OtherCpuShare(const MachineCpu& from, double ours) {
  const MachineCpu now = MachineCpuNow();
  const double capacity = now.total - from.total;
  return capacity > 0 ? std::max(0.0, (now.busy - from.busy - ours) / capacity) : 0;
}

// CPU seconds (user + system) of this process (RUSAGE_SELF) or of its reaped children
// (RUSAGE_CHILDREN: redis-server, the servers, workers and redis-benchmark once they have exited).
double RusageCpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return absl::ToDoubleSeconds(absl::DurationFromTimeval(u.ru_utime) + absl::DurationFromTimeval(u.ru_stime));
}
double SelfCpuSeconds() { return RusageCpuSeconds(RUSAGE_SELF); }

using testing::HttpGet;      // tests/fixtures.h: plain HTTP/1.0 GET of the metrics endpoint
using testing::MetricValue;  // an unlabelled Prometheus sample

std::shared_ptr<grpc::Channel> NewChannel(int port) {
  grpc::ChannelArguments args;
  // Channels to the same target share one TCP connection unless each has its own subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto ch = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args);
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) Die("cannot connect to psd3d-server");
  return ch;
}

std::vector<std::unique_ptr<Stub>> NewStubs(int port, int n) {
  std::vector<std::unique_ptr<Stub>> stubs;
  for (int i = 0; i < n; ++i) stubs.push_back(v1::GenerationService::NewStub(NewChannel(port)));
  return stubs;
}

// A realistic small submit: a prompt and a label, defaults for the rest (the server picks the seed).
v1::SubmitJobRequest SubmitRequest(const std::string& prompt) {
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_prompt(prompt);
  (*req.mutable_labels())["team"] = "bench";
  return req;
}

std::string MustSubmit(Stub& stub, const std::string& prompt) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::Job job;
  grpc::Status s = stub.SubmitJob(&ctx, SubmitRequest(prompt), &job);
  if (!s.ok()) Die(absl::StrCat("SubmitJob: ", s.error_message()));
  return job.id();
}

// ---------------------------------------------------------------------------------------------------
// The processes under test

// A running psd3d-server; its Prometheus endpoint is always on (the memory and hub runs read it).
struct Server {
  std::unique_ptr<Process> proc;
  int port = 0;
  int metrics_port = 0;
  std::string Metrics() const { return HttpGet(metrics_port, "/metrics"); }
};

class Service {
 public:
  Service() : dir_(testing::MakeTempDir("bench")), redis_conn_(redis_.Connect()) {}
  // Logs are kept when a failure is unwinding through here, and removed after a clean run.
  ~Service() {
    if (std::uncaught_exceptions() > 0) {
      std::cerr << "psd3d-service-bench: process logs kept in " << dir_ << "\n";
    } else {
      std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
    }
  }
  const RedisServer& redis() const { return redis_; }
  const std::string& dir() const { return dir_; }

  // A fresh psd3d-server, with production's housekeeping period (the fixture's 200 ms is for tests).
  // Each server logs in its own directory: StartServer reads the port from the first "listening on
  // port" line of <dir>/server.log, so two servers must not share one.
  Server StartServer() {
    Server s;
    s.metrics_port = testing::FreePort();
    const std::vector<std::string> extra = {absl::StrCat("--max_queue=", absl::GetFlag(FLAGS_max_queue)),
                                            "--housekeeping_ms=1000",
                                            absl::StrCat("--metrics_address=127.0.0.1:", s.metrics_port)};
    const std::string dir = absl::StrCat(dir_, "/server-", ++servers_);
    if (mkdir(dir.c_str(), 0755) != 0) Die("cannot create " + dir);
    s.proc = testing::StartServer(redis_, dir, &s.port, extra);
    return s;
  }
  std::unique_ptr<Process> StartWorker() {
    return testing::StartTestWorker(redis_, dir_, absl::StrCat("bench-worker-", ++workers_));
  }

  std::string Command(const std::vector<absl::string_view>& argv) {
    auto r = redis_conn_->Command(argv);
    if (!r.ok()) Die(absl::StrCat("redis ", argv[0], ": ", r.status().message()));
    return r->AsString();
  }
  void Flush() { Command({"FLUSHDB"}); }
  void SetFsync(const std::string& mode) { Command({"CONFIG", "SET", "appendfsync", mode}); }

  // Calls of one command so far (INFO commandstats), e.g. "xread".
  long long CommandCalls(const std::string& name) {
    long long calls = 0;
    (void)absl::SimpleAtoi(InfoField("commandstats", absl::StrCat("cmdstat_", name, ":calls="), ","), &calls);
    return calls;
  }
  std::string Version() { return InfoField("server", "redis_version:", "\r"); }
  // Redis' latency monitor records every event (an AOF fsync, a slow command) of at least
  // `threshold_ms`; StallSince reports the worst since the last call and starts afresh. This is what
  // tells a submit tail caused by the disk from one caused by the server.
  void MonitorStalls(int threshold_ms) {
    Command({"CONFIG", "SET", "latency-monitor-threshold", std::to_string(threshold_ms)});
    Command({"LATENCY", "RESET"});
  }
  std::pair<std::string, long long> WorstStallSinceLast() {
    auto r = redis_conn_->Command({"LATENCY", "LATEST"});
    if (!r.ok()) Die("redis LATENCY LATEST failed");
    std::pair<std::string, long long> worst{"", 0};
    for (const auto& e : r->elements) {  // [event, unix time, latest ms, max ms]
      if (e.elements.size() == 4 && e.elements[3].integer > worst.second) worst = {e.elements[0].str, e.elements[3].integer};
    }
    Command({"LATENCY", "RESET"});
    return worst;
  }
  // CPU seconds redis-server has used (INFO cpu), main thread and background threads together.
  double CpuSeconds() {
    double sys = 0, user = 0;
    (void)absl::SimpleAtod(InfoField("cpu", "used_cpu_sys:", "\r"), &sys);
    (void)absl::SimpleAtod(InfoField("cpu", "used_cpu_user:", "\r"), &user);
    return sys + user;
  }

 private:
  // The text between `key` and `end` in INFO <section>; empty when absent.
  std::string InfoField(const std::string& section, const std::string& key, const std::string& end) {
    auto r = redis_conn_->Command({"INFO", section});
    if (!r.ok()) Die("redis INFO failed");
    size_t at = r->str.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    return r->str.substr(at, r->str.find(end, at) - at);
  }

  RedisServer redis_;
  std::string dir_;
  std::unique_ptr<RedisConnection> redis_conn_;
  int servers_ = 0, workers_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// 1. Submit throughput and latency

struct SubmitLevel {
  std::string fsync;
  int clients = 0;
  long long ok = 0, failed = 0;
  double per_second = 0, p50_ms = 0, p99_ms = 0, max_ms = 0;
  // CPU time per successful submit, by process: where the shared cores go. Unlike throughput, these
  // barely move when something else loads the machine, so they compare builds reliably.
  double client_cpu_us = 0, server_cpu_us = 0, redis_cpu_us = 0;
  double other_cpu_share = 0;  // of the machine, by processes not in the benchmark (should be ~0)
  // Redis' worst latency event during the level (latency monitor), e.g. "aof-fsync-always" 35 ms.
  std::string redis_stall_event;
  long long redis_stall_ms = 0;
  std::string first_error;
  bool MeetsTarget() const { return per_second >= kTargetSubmitsPerSecond && p99_ms < kTargetSubmitP99Ms; }
};

// `clients` threads, each doing synchronous SubmitJob calls back to back for `duration`.
SubmitLevel RunSubmitLevel(const std::vector<std::unique_ptr<Stub>>& stubs, int clients, absl::Duration duration) {
  std::vector<std::vector<double>> latencies(clients);
  std::vector<long long> failed(clients, 0);
  std::vector<std::string> errors(clients);
  std::vector<Clock::time_point> ended(clients);
  absl::Notification go;
  Clock::time_point start, deadline;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      Stub& stub = *stubs[i % stubs.size()];
      const v1::SubmitJobRequest req = SubmitRequest("a ceramic teapot with a blue glaze, studio lighting");
      latencies[i].reserve(1 << 14);
      go.WaitForNotification();
      while (Clock::now() < deadline) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::Job job;
        const auto t0 = Clock::now();
        grpc::Status s = stub.SubmitJob(&ctx, req, &job);
        const auto t1 = Clock::now();
        if (s.ok()) {
          latencies[i].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else if (failed[i]++ == 0) {
          errors[i] = absl::StrCat(s.error_code(), ": ", s.error_message());
        }
      }
      ended[i] = Clock::now();
    });
  }
  start = Clock::now();
  deadline = start + std::chrono::microseconds(absl::ToInt64Microseconds(duration));
  go.Notify();
  for (auto& t : threads) t.join();

  SubmitLevel level;
  level.clients = clients;
  std::vector<double> all;
  for (int i = 0; i < clients; ++i) {
    all.insert(all.end(), latencies[i].begin(), latencies[i].end());
    level.failed += failed[i];
    if (level.first_error.empty()) level.first_error = errors[i];
  }
  // Calls in flight at the deadline still count: divide by when the last one returned.
  const double seconds = std::chrono::duration<double>(*std::max_element(ended.begin(), ended.end()) - start).count();
  level.ok = static_cast<long long>(all.size());
  level.per_second = level.ok / seconds;
  level.p50_ms = Percentile(all, 0.50);
  level.p99_ms = Percentile(all, 0.99);
  level.max_ms = Percentile(all, 1.0);
  return level;
}

// One level, with the CPU each process spent on it.
SubmitLevel MeasureSubmitLevel(Service& svc, const Server& server, const std::vector<std::unique_ptr<Stub>>& stubs,
                               int clients) {
  (void)svc.WorstStallSinceLast();
  const MachineCpu machine0 = MachineCpuNow();
  const double client0 = SelfCpuSeconds(), server0 = ProcessCpuSeconds(server.proc->pid()), redis0 = svc.CpuSeconds();
  SubmitLevel l = RunSubmitLevel(stubs, clients, absl::Seconds(absl::GetFlag(FLAGS_level_seconds)));
  const double client = SelfCpuSeconds() - client0, server_cpu = ProcessCpuSeconds(server.proc->pid()) - server0,
               redis = svc.CpuSeconds() - redis0;
  l.other_cpu_share = OtherCpuShare(machine0, client + server_cpu + redis);
  std::tie(l.redis_stall_event, l.redis_stall_ms) = svc.WorstStallSinceLast();
  const double n = std::max<long long>(1, l.ok) / 1e6;
  l.client_cpu_us = client / n;
  l.server_cpu_us = server_cpu / n;
  l.redis_cpu_us = redis / n;
  return l;
}

std::vector<SubmitLevel> RunSubmitSweep(Service& svc, const Server& server, const std::string& fsync) {
  auto stubs = NewStubs(server.port, absl::GetFlag(FLAGS_channels));
  // Warm up: connections, the server's Redis pool and the script cache.
  RunSubmitLevel(stubs, std::min<int>(8, stubs.size()), absl::Milliseconds(300));
  std::vector<SubmitLevel> levels;
  for (int clients : ParseInts(absl::GetFlag(FLAGS_clients), "clients")) {
    svc.Flush();  // every level starts from an empty queue
    SubmitLevel l = MeasureSubmitLevel(svc, server, stubs, clients);
    l.fsync = fsync;
    if (l.failed > 0) std::cerr << "  " << l.failed << " submits failed at " << clients << " clients: " << l.first_error << "\n";
    std::cerr << absl::StrFormat(
        "  submit fsync=%s clients=%d: %.0f/s p50 %.2f ms p99 %.2f ms max %.1f ms; CPU us/submit client %.0f server %.0f redis %.0f; "
        "redis stall %s %d ms; other processes %.0f%%\n",
        fsync, clients, l.per_second, l.p50_ms, l.p99_ms, l.max_ms, l.client_cpu_us, l.server_cpu_us, l.redis_cpu_us,
        l.redis_stall_event, l.redis_stall_ms, 100 * l.other_cpu_share);
    levels.push_back(l);
  }
  svc.Flush();
  return levels;
}

// ---------------------------------------------------------------------------------------------------
// 1b. The Redis ceiling: redis-benchmark against the same redis-server

struct RedisCeiling {
  std::string fsync, name;
  double per_second = 0, p50_ms = 0;
};

// A script shaped like a submit (one HSET + one ZADD + one XADD), without psd3d's extra bookkeeping.
constexpr char kSubmitLikeScript[] =
    "local id = ARGV[1] "
    "redis.call('HSET', 'rb:job:' .. id, 'id', id, 'submit', ARGV[2], 'state', 'QUEUED', 'attempt', 0, "
    "'priority', 0, 'create_ms', ARGV[3], 'update_ms', ARGV[3]) "
    "redis.call('ZADD', 'rb:queue', ARGV[3], id) "
    "redis.call('XADD', 'rb:job:' .. id .. ':ev', '*', 'type', 'state', 'state', 'QUEUED', 'reason', 'submitted') "
    "return 1";

// Runs redis-benchmark (quiet mode) and parses "NAME: 12345.67 requests per second, p50=0.815 msec".
RedisCeiling RunRedisBenchmark(Service& svc, const std::string& name, const std::vector<std::string>& command) {
  std::vector<std::string> argv = {absl::GetFlag(FLAGS_redis_benchmark), "-p", std::to_string(svc.redis().port()),
                                   "-q", "-n", std::to_string(absl::GetFlag(FLAGS_redis_benchmark_requests)),
                                   "-c", std::to_string(absl::GetFlag(FLAGS_redis_benchmark_clients)),
                                   "-P", "1", "-r", "100000000"};
  argv.insert(argv.end(), command.begin(), command.end());
  static int run = 0;
  Process p(absl::StrCat("redis-benchmark-", ++run), argv, svc.dir());
  if (p.Wait(absl::Minutes(5)) != 0) Die("redis-benchmark failed: " + p.Log());
  RedisCeiling c;
  c.name = name;
  const std::string log = p.Log();
  const size_t rps_end = log.rfind(" requests per second");
  if (rps_end == std::string::npos) Die("cannot parse redis-benchmark output: " + log);
  const size_t rps_begin = log.rfind(": ", rps_end) + 2;
  (void)absl::SimpleAtod(log.substr(rps_begin, rps_end - rps_begin), &c.per_second);
  if (size_t p50 = log.find("p50=", rps_end); p50 != std::string::npos) {
    (void)absl::SimpleAtod(log.substr(p50 + 4, log.find(' ', p50) - p50 - 4), &c.p50_ms);
  }
  svc.Flush();
  return c;
}

std::vector<RedisCeiling> RunRedisCeilings(Service& svc, const std::string& fsync) {
  if (absl::GetFlag(FLAGS_redis_benchmark).empty()) return {};
  const std::string payload(96, 'x');  // about the size of a serialized SubmitJobRequest
  const std::string submit_sha = svc.Command({"SCRIPT", "LOAD", lua::All().submit.source});
  std::vector<RedisCeiling> out = {
      RunRedisBenchmark(svc, "SET", {"-t", "set"}),
      RunRedisBenchmark(svc, "EVAL HSET+ZADD+XADD", {"EVAL", kSubmitLikeScript, "0", "__rand_int__", payload, "1700000000000"}),
      // psd3d's own submit script with the arguments the server passes (no request_id).
      RunRedisBenchmark(svc, "EVALSHA submit.lua",
                        {"EVALSHA", submit_sha, "0", "rb:", "__rand_int__", "1700000000000", payload, "0", "3",
                         "100000000", "", "", "604800", "2000"}),
  };
  for (auto& c : out) {
    c.fsync = fsync;
    std::cerr << absl::StrFormat("  redis-benchmark fsync=%s %s: %.0f/s\n", fsync, c.name, c.per_second);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// WatchJob streams read with gRPC's callback API, so a thousand streams need no thousand threads.

class WatchStream : public grpc::ClientReadReactor<v1::JobEvent> {
 public:
  WatchStream(Stub& stub, const std::string& job_id, std::atomic<int>* started) : started_(started) {
    req_.set_job_id(job_id);
    stub.async()->WatchJob(&ctx_, &req_, this);
    StartRead(&ev_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const absl::Time now = absl::Now();
    if (events_++ == 0) started_->fetch_add(1);
    if (ev_.has_progress()) {
      const absl::Time emitted = absl::FromUnixSeconds(ev_.time().seconds()) + absl::Nanoseconds(ev_.time().nanos());
      latencies_ms_.push_back(absl::ToDoubleMilliseconds(now - emitted));
    }
    StartRead(&ev_);
  }
  void OnDone(const grpc::Status& s) override {
    status_ = s;
    done_.Notify();
  }

  void Cancel() { ctx_.TryCancel(); }
  bool WaitDone(absl::Duration timeout) { return done_.WaitForNotificationWithTimeout(timeout); }
  // Valid once done.
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }
  int events() const { return events_; }
  const grpc::Status& status() const { return status_; }

 private:
  grpc::ClientContext ctx_;
  v1::WatchJobRequest req_;
  v1::JobEvent ev_;
  std::atomic<int>* started_;
  int events_ = 0;
  std::vector<double> latencies_ms_;
  grpc::Status status_;
  absl::Notification done_;
};

// A set of streams; `jobs[i % jobs.size()]` is watched over `stubs[i % stubs.size()]`.
class Watchers {
 public:
  Watchers(const std::vector<std::unique_ptr<Stub>>& stubs, const std::vector<std::string>& jobs, int n) {
    for (int i = 0; i < n; ++i) {
      streams_.push_back(std::make_unique<WatchStream>(*stubs[i % stubs.size()], jobs[i % jobs.size()], &started_));
    }
  }
  ~Watchers() {
    CancelAll();
    WaitAllDone(absl::Seconds(30));
  }
  // Every stream has received its first event (the replayed QUEUED event): the server follows it.
  bool WaitAllStarted(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (started_.load() < static_cast<int>(streams_.size())) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }
  bool WaitAllDone(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (auto& s : streams_) {
      if (!s->WaitDone(std::max(absl::ZeroDuration(), deadline - absl::Now()))) return false;
    }
    return true;
  }
  void CancelAll() {
    for (auto& s : streams_) s->Cancel();
  }
  const std::vector<std::unique_ptr<WatchStream>>& streams() const { return streams_; }

 private:
  std::atomic<int> started_{0};
  std::vector<std::unique_ptr<WatchStream>> streams_;
};

// Runs one test-engine job while `watchers` (already following it) receive its events; returns the
// worst Redis latency event meanwhile.
std::pair<std::string, long long> RunWatchedJob(Service& svc, Watchers& watchers) {
  if (!watchers.WaitAllStarted(absl::Seconds(30))) Die("watch streams did not start");
  (void)svc.WorstStallSinceLast();
  // The worker starts only now, so every progress event reaches the watchers live, not by replay.
  auto worker = svc.StartWorker();
  if (!watchers.WaitAllDone(absl::Seconds(120))) Die("watched job did not finish; worker log:\n" + worker->Log());
  for (const auto& s : watchers.streams()) {
    if (!s->status().ok()) Die(absl::StrCat("WatchJob ended with ", s->status().error_message()));
  }
  return svc.WorstStallSinceLast();
}

// ---------------------------------------------------------------------------------------------------
// 2. Worker-to-watcher event latency

struct EventLatency {
  std::string fsync;
  int watchers = 0;
  size_t samples = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::pair<std::string, long long> redis_stall;  // worst Redis latency event while the job ran
};

EventLatency Summarize(const std::string& fsync, const Watchers& watchers) {
  std::vector<double> all;
  for (const auto& s : watchers.streams()) all.insert(all.end(), s->latencies_ms().begin(), s->latencies_ms().end());
  EventLatency e;
  e.fsync = fsync;
  e.watchers = static_cast<int>(watchers.streams().size());
  e.samples = all.size();
  e.p50_ms = Percentile(all, 0.50);
  e.p99_ms = Percentile(all, 0.99);
  e.max_ms = Percentile(all, 1.0);
  return e;
}

EventLatency MeasureEventLatency(Service& svc, const Server& server, const std::string& fsync) {
  svc.Flush();  // no leftover queued jobs for the worker to pick up first
  auto stubs = NewStubs(server.port, 1);
  const std::string id = MustSubmit(
      *stubs[0], absl::StrCat("event latency steps=", absl::GetFlag(FLAGS_event_steps), " step_ms=",
                              absl::GetFlag(FLAGS_event_step_ms)));
  Watchers watchers(stubs, {id}, 1);
  const auto stall = RunWatchedJob(svc, watchers);
  EventLatency e = Summarize(fsync, watchers);
  e.redis_stall = stall;
  std::cerr << absl::StrFormat("  event latency fsync=%s: %d samples p50 %.2f ms p99 %.2f ms\n", fsync, e.samples,
                               e.p50_ms, e.p99_ms);
  svc.Flush();
  return e;
}

// ---------------------------------------------------------------------------------------------------
// 3. Server memory per open WatchJob stream (a fresh server per run, so earlier work's freed heap
// cannot hide the growth)

struct WatchMemory {
  int streams = 0, jobs = 0;
  long long rss_before_kib = 0, rss_after_kib = 0;
  double subscribers_metric = -1;
  double PerStreamKib() const { return static_cast<double>(rss_after_kib - rss_before_kib) / streams; }
};

// Polls psd3d_stream_subscribers (refreshed by the server's housekeeping loop) until it reads `want`.
double WaitForSubscribers(const Server& server, int want, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  double v = -1;
  while (absl::Now() < deadline) {
    v = MetricValue(server.Metrics(), "psd3d_stream_subscribers");
    if (v == want) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return v;
}

WatchMemory MeasureWatchMemory(Service& svc, int jobs, int streams) {
  svc.Flush();
  const Server server = svc.StartServer();
  auto stubs = NewStubs(server.port, absl::GetFlag(FLAGS_watch_channels));
  std::vector<std::string> ids;
  for (int i = 0; i < jobs; ++i) ids.push_back(MustSubmit(*stubs[i % stubs.size()], "a queued job nobody runs"));
  {
    // Warm up: first streams initialise the callback machinery and the hub's connection.
    Watchers warm(stubs, ids, std::min<int>(10, streams));
    if (!warm.WaitAllStarted(absl::Seconds(30))) Die("warm-up watch streams did not start");
  }
  absl::SleepFor(absl::Milliseconds(500));
  WatchMemory m;
  m.jobs = jobs;
  m.streams = streams;
  m.rss_before_kib = RssKib(server.proc->pid());
  Watchers watchers(stubs, ids, streams);
  if (!watchers.WaitAllStarted(absl::Seconds(60))) Die("watch streams did not start");
  m.subscribers_metric = WaitForSubscribers(server, streams, absl::Seconds(10));
  absl::SleepFor(absl::Milliseconds(500));
  m.rss_after_kib = RssKib(server.proc->pid());
  std::cerr << absl::StrFormat("  memory: %d streams on %d jobs: RSS %d -> %d KiB\n", streams, jobs,
                               m.rss_before_kib, m.rss_after_kib);
  return m;  // streams close, then the server stops
}

// ---------------------------------------------------------------------------------------------------
// 4. WatchHub efficiency: Redis reads for many watchers of one job

struct HubEfficiency {
  int watchers = 0;
  int events_per_watcher = 0;  // live events each watcher received (the replayed QUEUED event excluded)
  long long xread_calls = 0;   // Redis' own count (INFO commandstats) while the job ran
  double server_reads = -1;    // psd3d_watch_redis_reads_total delta; -1 when the server lacks it
  EventLatency latency;
};

// psd3d_watch_redis_reads_total is refreshed by the housekeeping loop (--housekeeping_ms=1000): read
// it after a full period so it is current. -1 when this server build does not export it.
double WatchReadsMetric(const Server& server) {
  absl::SleepFor(absl::Milliseconds(1200));
  return MetricValue(server.Metrics(), "psd3d_watch_redis_reads_total");
}

HubEfficiency MeasureHub(Service& svc, const Server& server) {
  svc.Flush();
  const int n = absl::GetFlag(FLAGS_hub_watchers);
  auto stubs = NewStubs(server.port, 4);
  const std::string id =
      MustSubmit(*stubs[0], absl::StrCat("hub steps=", absl::GetFlag(FLAGS_hub_steps), " step_ms=5"));
  Watchers watchers(stubs, {id}, n);
  if (!watchers.WaitAllStarted(absl::Seconds(30))) Die("hub watch streams did not start");
  // Only the server's WatchHub issues XREAD (workers never read streams), so the delta is its reads.
  const double metric_before = WatchReadsMetric(server);
  const long long xread_before = svc.CommandCalls("xread");
  const auto stall = RunWatchedJob(svc, watchers);
  const double metric_after = WatchReadsMetric(server);
  HubEfficiency h;
  h.watchers = n;
  h.xread_calls = svc.CommandCalls("xread") - xread_before;
  if (metric_before >= 0 && metric_after >= 0) h.server_reads = metric_after - metric_before;
  h.events_per_watcher = watchers.streams()[0]->events() - 1;
  h.latency = Summarize("always", watchers);
  h.latency.redis_stall = stall;
  std::cerr << absl::StrFormat("  hub: %d watchers, %d events each, %d XREAD calls, server metric %.0f\n", n,
                               h.events_per_watcher, h.xread_calls, h.server_reads);
  svc.Flush();
  return h;
}

// ---------------------------------------------------------------------------------------------------
// The table

struct Results {
  std::string machine;  // where it ran, printed as the table's header
  double other_cpu_share = 0;  // of the machine's CPU over the whole run, by processes not ours
  std::vector<SubmitLevel> submit;
  std::vector<RedisCeiling> ceilings;
  std::vector<EventLatency> events;
  std::vector<WatchMemory> memory;
  HubEfficiency hub;
};

std::string Verdict(bool met) { return met ? "MET" : "MISSED"; }

double PeakSubmits(const Results& r, const std::string& fsync) {
  double best = 0;
  for (const auto& l : r.submit) {
    if (l.fsync == fsync) best = std::max(best, l.per_second);
  }
  return best;
}

void PrintSubmit(const Results& r) {
  absl::PrintF("\n1. SubmitJob throughput and latency (synchronous calls from N client threads over %d gRPC channels,\n"
               "   round robin; %.1f s per level; jobs stay queued, DB flushed between levels)\n",
               absl::GetFlag(FLAGS_channels), absl::GetFlag(FLAGS_level_seconds));
  absl::PrintF("   target: >= %.0f submits/s with p99 < %.0f ms\n", kTargetSubmitsPerSecond, kTargetSubmitP99Ms);
  absl::PrintF("   %-9s %7s %10s %8s %8s %8s %6s  %-6s  %-21s %6s  %s\n", "fsync", "clients", "submits/s", "p50 ms",
               "p99 ms", "max ms", "errors", "target", "CPU us/submit c/s/r", "other",
               absl::StrCat("worst Redis stall (>= ", kStallThresholdMs, " ms)"));
  for (const auto& l : r.submit) {
    const std::string stall =
        l.redis_stall_ms > 0 ? absl::StrCat(l.redis_stall_ms, " ms ", l.redis_stall_event) : "none";
    absl::PrintF("   %-9s %7d %10.0f %8.2f %8.2f %8.1f %6d  %-6s  %5.0f / %4.0f / %4.0f    %5.0f%%  %s\n", l.fsync,
                 l.clients, l.per_second, l.p50_ms, l.p99_ms, l.max_ms, l.failed, l.MeetsTarget() ? "met" : "-",
                 l.client_cpu_us, l.server_cpu_us, l.redis_cpu_us, 100 * l.other_cpu_share, stall);
  }
  for (const auto& fsync : absl::StrSplit(absl::GetFlag(FLAGS_fsync), ',', absl::SkipEmpty())) {
    // The fastest level overall, and the fastest that meets the target (often not the same one).
    const SubmitLevel *peak = nullptr, *best_met = nullptr;
    for (const auto& l : r.submit) {
      if (l.fsync != fsync) continue;
      if (!peak || l.per_second > peak->per_second) peak = &l;
      if (l.MeetsTarget() && (!best_met || l.per_second > best_met->per_second)) best_met = &l;
    }
    if (!peak) continue;
    std::string line = absl::StrFormat("   appendfsync %s: ", std::string(fsync));
    if (best_met) {
      absl::StrAppendFormat(&line, "MET, best %.0f/s at %d clients (p99 %.2f ms)", best_met->per_second,
                            best_met->clients, best_met->p99_ms);
    } else {
      absl::StrAppend(&line, "MISSED");
    }
    if (peak != best_met) {
      absl::StrAppendFormat(&line, "%s peak %.0f/s at %d clients has p99 %.2f ms", best_met ? ";" : ":",
                            peak->per_second, peak->clients, peak->p99_ms);
    }
    absl::PrintF("%s\n", line);
  }
}

void PrintCeilings(const Results& r) {
  if (r.ceilings.empty()) return;
  absl::PrintF("\n1b. Redis ceiling: redis-benchmark -n %d -c %d -P 1 against the same redis-server, same 2 cores\n",
               absl::GetFlag(FLAGS_redis_benchmark_requests), absl::GetFlag(FLAGS_redis_benchmark_clients));
  absl::PrintF("   %-9s %-22s %10s %8s  %s\n", "fsync", "command", "req/s", "p50 ms", "psd3d peak submits/s as a fraction");
  for (const auto& c : r.ceilings) {
    const double peak = PeakSubmits(r, c.fsync);
    absl::PrintF("   %-9s %-22s %10.0f %8.3f  %.0f / %.0f = %.2f\n", c.fsync, c.name, c.per_second, c.p50_ms, peak,
                 c.per_second, c.per_second > 0 ? peak / c.per_second : 0);
  }
}

void PrintEvents(const Results& r) {
  absl::PrintF("\n2. Worker -> watcher event latency (receive time - event.time; event.time is the Redis stream id's\n"
               "   millisecond, stamped by Redis' clock when emit.lua ran XADD; test engine, %d steps x 3 stages,\n"
               "   %d ms per step, worker --progress_interval_ms=0)\n",
               absl::GetFlag(FLAGS_event_steps), absl::GetFlag(FLAGS_event_step_ms));
  absl::PrintF("   target: p99 < %.0f ms\n", kTargetEventP99Ms);
  absl::PrintF("   %-9s %8s %8s %8s %8s %8s  %-6s  %s\n", "fsync", "watchers", "samples", "p50 ms", "p99 ms", "max ms",
               "target", absl::StrCat("worst Redis stall (>= ", kStallThresholdMs, " ms)"));
  auto row = [](const EventLatency& e) {
    const std::string stall =
        e.redis_stall.second > 0 ? absl::StrCat(e.redis_stall.second, " ms ", e.redis_stall.first) : "none";
    absl::PrintF("   %-9s %8d %8d %8.2f %8.2f %8.2f  %-6s  %s\n", e.fsync, e.watchers, e.samples, e.p50_ms, e.p99_ms,
                 e.max_ms, Verdict(e.p99_ms < kTargetEventP99Ms), stall);
  };
  for (const auto& e : r.events) row(e);
  if (r.hub.watchers > 0) row(r.hub.latency);
}

void PrintMemory(const Results& r) {
  absl::PrintF("\n3. psd3d-server memory with open WatchJob streams (VmRSS; fresh server per row, warmed up with a few\n"
               "   streams; streams over %d gRPC channels on queued jobs, so idle: no events flow)\n",
               absl::GetFlag(FLAGS_watch_channels));
  absl::PrintF("   %7s %6s %11s %11s %14s %12s\n", "streams", "jobs", "RSS before", "RSS after", "per stream", "subscribers");
  for (const auto& m : r.memory) {
    absl::PrintF("   %7d %6d %7.1f MiB %7.1f MiB %10.1f KiB %12.0f\n", m.streams, m.jobs, m.rss_before_kib / 1024.0,
                 m.rss_after_kib / 1024.0, m.PerStreamKib(), m.subscribers_metric);
  }
}

void PrintHub(const Results& r) {
  const HubEfficiency& h = r.hub;
  if (h.watchers == 0) return;
  const long long deliveries = static_cast<long long>(h.events_per_watcher) * h.watchers;
  const double per_event = h.events_per_watcher > 0 ? static_cast<double>(h.xread_calls) / h.events_per_watcher : 0;
  absl::PrintF("\n4. WatchHub efficiency: %d watchers of one running job (test engine, %d steps x 3 stages)\n", h.watchers,
               absl::GetFlag(FLAGS_hub_steps));
  absl::PrintF("   events per watcher %d, deliveries %d\n", h.events_per_watcher, deliveries);
  absl::PrintF("   Redis XREAD calls while it ran (INFO commandstats): %d = %.2f per event, %.4f per delivery\n",
               h.xread_calls, per_event, deliveries > 0 ? static_cast<double>(h.xread_calls) / deliveries : 0);
  if (h.server_reads >= 0) {
    absl::PrintF("   server's psd3d_watch_redis_reads_total over the same run: %.0f\n", h.server_reads);
  } else {
    absl::PrintF("   (this server build does not export psd3d_watch_redis_reads_total; Redis' count above stands)\n");
  }
  absl::PrintF("   reading per watcher would take %d reads\n", deliveries);
}

void PrintTable(const Results& r) {
  absl::PrintF("\n==== psd3d service benchmarks ====\n%s", r.machine);
  absl::PrintF("CPU used by other processes during the run: %.0f%% of the machine%s\n", 100 * r.other_cpu_share,
               r.other_cpu_share > 0.10 ? "  (WARNING: not idle; rerun on a quiet machine, see 'other' per level)" : "");
  PrintSubmit(r);
  PrintCeilings(r);
  PrintEvents(r);
  PrintMemory(r);
  PrintHub(r);
  std::fflush(stdout);
}

}  // namespace
}  // namespace psd3d::bench

namespace psd3d::bench {
namespace {

std::string DescribeMachine(Service& svc) {
  utsname u{};
  uname(&u);
  long long mem_kib = 0;
  (void)absl::SimpleAtoi(absl::StripSuffix(ProcField("meminfo", "MemTotal:"), " kB"), &mem_kib);
  return absl::StrFormat(
      "machine: %s, %d cores, %.0f GiB RAM, Linux %s; redis-server %s (AOF in %s)\n"
      "redis-server, psd3d-server, the worker and this client all share those cores.\n",
      ProcField("cpuinfo", "model name\t:"), std::thread::hardware_concurrency(), mem_kib / 1048576.0, u.release,
      svc.Version(), std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
}

void RunPhases(Service& svc, const std::vector<std::string>& modes, Results* out) {
  Results& r = *out;
  r.machine = DescribeMachine(svc);
  svc.MonitorStalls(kStallThresholdMs);
  const Server server = svc.StartServer();
  for (const std::string& mode : modes) {
    std::cerr << "appendfsync " << mode << "\n";
    svc.SetFsync(mode);
    auto levels = RunSubmitSweep(svc, server, mode);
    r.submit.insert(r.submit.end(), levels.begin(), levels.end());
    auto ceilings = RunRedisCeilings(svc, mode);
    r.ceilings.insert(r.ceilings.end(), ceilings.begin(), ceilings.end());
    r.events.push_back(MeasureEventLatency(svc, server, mode));
  }
  // Memory and hub reads do not depend on fsync; run them with the tests' setting.
  svc.SetFsync("always");
  for (int jobs : ParseInts(absl::GetFlag(FLAGS_watch_jobs), "watch_jobs")) {
    r.memory.push_back(MeasureWatchMemory(svc, jobs, absl::GetFlag(FLAGS_watch_streams)));
  }
  r.hub = MeasureHub(svc, server);
}

Results Run(const std::vector<std::string>& modes) {
  const MachineCpu machine0 = MachineCpuNow();
  const double ours0 = SelfCpuSeconds() + RusageCpuSeconds(RUSAGE_CHILDREN);
  Results r;
  {
    Service svc;  // its destructor stops (and reaps) every child process
    RunPhases(svc, modes, &r);
  }
  r.other_cpu_share = OtherCpuShare(machine0, SelfCpuSeconds() + RusageCpuSeconds(RUSAGE_CHILDREN) - ours0);
  return r;
}

}  // namespace
}  // namespace psd3d::bench

int main(int argc, char** argv) {
  using namespace psd3d::bench;
  absl::SetProgramUsageMessage(
      "starts redis-server (AOF) and psd3d-server, measures submit throughput and latency, worker-to-watcher "
      "event latency, memory per watch stream and WatchHub reads, and prints one table (docs/benchmarks.md).\n"
      "  psd3d-service-bench [--level_seconds=2] [--fsync=always,everysec] [--clients=1,2,4,8,16,32,64] ...");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "bench/"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.normalize_filename = [](absl::string_view file) {
    const size_t at = file.rfind("bench/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex (gRPC's included) runs deadlock
  // detection; the client is not what is measured, so spare it that cost.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  try {
    const std::vector<std::string> modes = absl::StrSplit(absl::GetFlag(FLAGS_fsync), ',', absl::SkipEmpty());
    for (const auto& m : modes) {
      if (m != "always" && m != "everysec" && m != "no") Die("--fsync: '" + m + "' is not always, everysec or no");
    }
    PrintTable(Run(modes));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "psd3d-service-bench: " << e.what() << "\n";
    return 1;
  }
}
