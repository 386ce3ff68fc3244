// psd3d-server: the gRPC front server. Stateless: Redis is the source of truth, so any number of
// replicas can run side by side.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <atomic>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/job_codec.h"
#include "common/log.h"
#include "common/queue_flags.h"
#include "common/signals.h"
#include "server/api_tokens.h"
#include "server/auth.h"
#include "server/callback_keepalive.h"
#include "server/generation_service.h"
#include "server/health_probe.h"
#include "server/server_tls.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC listen address");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9464", "Prometheus /metrics listen address; empty disables");
ABSL_FLAG(int64_t, max_queue, 10000, "Admission limit: SubmitJob answers RESOURCE_EXHAUSTED beyond this many waiting jobs");
ABSL_FLAG(int, max_attempts, 3, "Attempts per job before it is FAILED (dead-lettered)");
ABSL_FLAG(std::string, model_packs, "tiny", "Comma-separated model packs jobs may name; the first is the default");
ABSL_FLAG(int, max_watch_backlog, 1000, "Events buffered for one slow watcher before its stream is ended (it can resume)");
ABSL_FLAG(int, shutdown_grace_seconds, 5, "After SIGTERM: seconds NOT_SERVING before streams are drained");
ABSL_FLAG(int, housekeeping_ms, 1000, "Period of retry promotion, lease recovery and queue metrics");
ABSL_FLAG(std::string, log_level, "warning", "debug, info, warning or error");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve TLS on --listen instead of plaintext (needs --tls_key). Both files are "
          "re-read every 60 s, so a renewed certificate is served without a restart");
ABSL_FLAG(std::string, tls_key, "", "PEM private key (unencrypted) of --tls_cert");
ABSL_FLAG(std::string, api_tokens_file, "",
          "File of accepted API tokens, one [NAME:]TOKEN per line (# comments; tokens contain no ':'); re-read when it changes. When "
          "set, every psd3d.v1 call needs the metadata 'authorization: Bearer TOKEN', else UNAUTHENTICATED "
          "(grpc.health.v1 and reflection stay open). Needs --tls_cert: tokens never travel in plaintext");
ABSL_FLAG(bool, health_check, false,
          "Do not serve: ask the server at --listen (loopback when it listens on every address) for the "
          "grpc.health.v1 status of --health_service and exit 0 when SERVING, 1 otherwise (container health checks). "
          "With --tls_cert it connects over TLS without verifying the certificate (loopback, no credential sent); "
          "--tls_key is not read");
ABSL_FLAG(std::string, health_service, "",
          "With --health_check: the service to check; \"\" (readiness: Redis reachable, not shutting down) "
          "or psd3d.liveness (SERVING while the process runs)");

namespace {

constexpr char kUsage[] =
    "psd3d-server: the psd3d gRPC front server (psd3d.v1.GenerationService, grpc.health.v1, reflection).\n"
    "  psd3d-server --listen=0.0.0.0:50051 --redis=127.0.0.1:6379 [--metrics_address=0.0.0.0:9464]\n"
    "               [--tls_cert=tls.crt --tls_key=tls.key [--api_tokens_file=tokens]]\n"
    "SIGTERM: health turns NOT_SERVING, then open streams are drained and the server exits.";

constexpr char kServiceName[] = "psd3d.v1.GenerationService";
// Liveness (Kubernetes' gRPC liveness probe): SERVING while the process runs, whatever Redis does, so
// a Redis outage makes replicas unready rather than restarting them all.
constexpr char kLivenessService[] = "psd3d.liveness";

// Picks up a rotated tokens file (a Secret update reaches the mounted file within a minute or so).
// A bad file keeps the previous tokens: locking every client out over a typo is worse than a revoked
// token living until the file is fixed, and the error is logged at error level.
void ReloadTokens(psd3d::ApiTokens& tokens, std::string* last_error) {
  auto changed = tokens.ReloadIfChanged();
  if (!changed.ok()) {
    if (std::string(changed.status().message()) != *last_error) {
      *last_error = std::string(changed.status().message());
      PSD3D_LOG(kError, "server", "api tokens not reloaded; the previous tokens stay in force",
                {{"error", *last_error}});
    }
    return;
  }
  last_error->clear();
  if (*changed) {
    PSD3D_LOG(kWarning, "server", "api tokens reloaded", {{"tokens", absl::StrJoin(tokens.names(), ",")}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace psd3d;
  BlockTerminationSignals();
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex (gRPC's too) would run deadlock
  // detection: ~10% of the server's CPU per submit (docs/benchmarks.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ConfigureFlagsUsage(kUsage);
  absl::ParseCommandLine(argc, argv);
  if (!ApplyLogLevel(absl::GetFlag(FLAGS_log_level))) return 2;
  if (absl::GetFlag(FLAGS_health_check)) {
    const std::string listen = absl::GetFlag(FLAGS_listen);
    const size_t colon = listen.rfind(':');
    int listen_port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &listen_port) || listen_port <= 0) {
      std::cerr << "psd3d-server: --health_check needs --listen with a fixed port, not '" << listen << "'\n";
      return 2;
    }
    return ProbeHealth(LoopbackTarget(listen, listen_port), absl::GetFlag(FLAGS_health_service), absl::Seconds(2),
                       absl::GetFlag(FLAGS_tls_cert));
  }
  if (absl::GetFlag(FLAGS_max_attempts) < 1 || absl::GetFlag(FLAGS_max_queue) < 1) {
    std::cerr << "psd3d-server: --max_attempts and --max_queue must be at least 1\n";
    return 2;
  }
  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert), tls_key = absl::GetFlag(FLAGS_tls_key);
  const bool tls = !tls_cert.empty();
  if (tls_cert.empty() != tls_key.empty()) {
    std::cerr << "psd3d-server: --tls_cert and --tls_key go together\n";
    return 2;
  }
  std::string tls_summary;
  if (tls) {
    if (auto s = CheckTlsFiles(tls_cert, tls_key, &tls_summary); !s.ok()) {
      std::cerr << "psd3d-server: " << s.message() << "\n";
      return 2;
    }
  }
  std::shared_ptr<ApiTokens> tokens;
  if (const std::string path = absl::GetFlag(FLAGS_api_tokens_file); !path.empty()) {
    if (!tls) {
      std::cerr << "psd3d-server: --api_tokens_file needs --tls_cert and --tls_key: bearer tokens must not travel in "
                   "plaintext (and gRPC authenticates calls only on TLS listeners)\n";
      return 2;
    }
    auto loaded = ApiTokens::Load(path);
    if (!loaded.ok()) {
      std::cerr << "psd3d-server: --api_tokens_file: " << loaded.status().message() << "\n";
      return 2;
    }
    tokens = *std::move(loaded);
  }

  RedisPool pool(RedisOptionsFromFlags(), 64);
  {
    auto probe = pool.Acquire();
    if (!probe.ok()) {
      std::cerr << "psd3d-server: cannot reach Redis: " << probe.status().message() << "\n";
      return 1;
    }
  }
  const QueueConfig qc = QueueConfigFromFlags();
  JobQueue queue(&pool, qc);

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (const std::string addr = absl::GetFlag(FLAGS_metrics_address); !addr.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(addr);
      exposer->RegisterCollectable(registry);
    } catch (const std::exception& e) {
      std::cerr << "psd3d-server: --metrics_address " << addr << ": " << e.what() << "\n";
      return 1;
    }
  }
  ServerMetrics metrics(*registry);
  WatchHub hub(&pool, Keys(qc.prefix));

  GenerationServiceImpl::Options options;
  options.limits.model_packs = absl::StrSplit(absl::GetFlag(FLAGS_model_packs), ',', absl::SkipEmpty());
  options.submit.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  options.submit.max_queue = absl::GetFlag(FLAGS_max_queue);
  options.max_watch_backlog = absl::GetFlag(FLAGS_max_watch_backlog);
  GenerationServiceImpl service(&queue, &hub, &metrics, options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::shared_ptr<grpc::ServerCredentials> credentials =
      tls ? TlsServerCredentialsFromFiles(tls_cert, tls_key) : grpc::InsecureServerCredentials();
  if (tokens) credentials->SetAuthMetadataProcessor(std::make_shared<BearerTokenAuth>(tokens, &metrics));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), credentials, &port);
  builder.RegisterService(&service);
  // gRPC's default keeps at most 2 idle pollers, so under concurrent unary calls the sync server
  // creates and destroys threads continually (thousands a second); 64 cut CPU per submit by 30-50%.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 64);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "psd3d-server: cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  auto* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(kLivenessService, true);
  CallbackKeepalive keepalive(absl::GetFlag(FLAGS_listen), port, tls_cert);
  // Printed for scripts and tests that start the server on port 0.
  std::cout << "psd3d-server listening on port " << port << std::endl;
  PSD3D_LOG(kInfo, "server", "started",
            {{"port", std::to_string(port)},
             {"tls", tls ? tls_summary : "off"},
             {"api_tokens", tokens ? absl::StrJoin(tokens->names(), ",") : "off"}});

  absl::Notification stop;
  std::atomic<bool> serving{true};
  std::string token_error;  // the last reload error, logged once
  std::thread housekeeping([&] {
    const absl::Duration period = absl::Milliseconds(absl::GetFlag(FLAGS_housekeeping_ms));
    while (!stop.WaitForNotificationWithTimeout(period)) {
      bool ok = queue.Promote().ok();
      if (auto d = queue.QueueDepth(); d.ok()) metrics.SetQueue(*d);
      else ok = false;
      if (auto conn = pool.Acquire(); conn.ok()) {
        if (auto r = (*conn)->Command({"HGETALL", queue.keys().Stats()}); r.ok()) metrics.SetTotals(ToFieldMap(*r));
      }
      if (tokens) ReloadTokens(*tokens, &token_error);
      metrics.SetSubscribers(hub.subscribers());
      metrics.SetWatchReads(hub.redis_reads());
      // Readiness follows Redis: a server that cannot reach the queue should get no traffic.
      if (ok != serving.load() && !stop.HasBeenNotified()) {
        serving = ok;
        // By name only: the global SetServingStatus(bool) would set psd3d.liveness too, and a Watch
        // on it (or a liveness probe at that instant) would see NOT_SERVING before it is set back.
        health->SetServingStatus("", ok);
        health->SetServingStatus(kServiceName, ok);
        PSD3D_LOG(kWarning, "server", ok ? "redis reachable again: SERVING" : "redis unreachable: NOT_SERVING");
      }
    }
  });

  absl::Notification terminate;
  OnTerminationSignal([&](int) {
    if (!terminate.HasBeenNotified()) terminate.Notify();
  });
  terminate.WaitForNotification();
  PSD3D_LOG(kWarning, "server", "shutting down: NOT_SERVING, then draining streams");
  stop.Notify();
  health->SetServingStatus("", false);  // liveness stays SERVING while the server drains
  health->SetServingStatus(kServiceName, false);
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  hub.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  housekeeping.join();
  return 0;
}
