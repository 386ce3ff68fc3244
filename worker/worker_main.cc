#include "worker/worker_main.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/job_lease.h"
#include "common/log.h"
#include "common/queue_flags.h"
#include "common/signals.h"
#include "worker/gpu_memory.h"
#include "worker/runtime.h"

ABSL_FLAG(std::string, engine, "", "Engine that runs jobs (default: the binary's own)");
ABSL_FLAG(std::string, name, "", "Worker name shown on jobs it runs (default: hostname-pid)");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0:9465", "Prometheus /metrics listen address; empty disables");
ABSL_FLAG(int, lease_seconds, 30, "Lease length; a worker silent this long loses its job to another");
ABSL_FLAG(int, renew_seconds, 10, "Lease renewal period (from a thread independent of the compute loop)");
ABSL_FLAG(int, progress_interval_ms, 250, "At most one progress event per interval");
ABSL_FLAG(int, checkpoint_interval_seconds, 300, "Checkpoint a running job at least this often");
ABSL_FLAG(int, idle_wait_ms, 1000, "Longest wait between claim attempts while the queue is empty");
ABSL_FLAG(int, max_jobs, 0, "Exit after this many attempts (0: run until SIGTERM)");
ABSL_FLAG(std::string, log_level, "warning", "debug, info, warning or error");
ABSL_FLAG(std::string, nvml_library, "libnvidia-ml.so.1",
          "NVML library for the GPU memory gauges on /metrics; none are exported when it cannot be loaded; "
          "empty disables");

namespace psd3d {

int RunWorkerMain(int argc, char** argv, const char* usage, const std::string& default_engine,
                  const EngineFactory& factory) {
  BlockTerminationSignals();
  // Debian's Abseil runs deadlock detection on every absl::Mutex (built without NDEBUG): pure overhead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ConfigureFlagsUsage(usage);
  absl::ParseCommandLine(argc, argv);
  if (!ApplyLogLevel(absl::GetFlag(FLAGS_log_level))) return 2;

  std::string engine_name = absl::GetFlag(FLAGS_engine);
  if (engine_name.empty()) engine_name = default_engine;
  auto engine = factory(engine_name);
  if (!engine.ok()) {
    std::cerr << "psd3d-worker: " << engine.status().message() << "\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_lease_seconds) < 2 || absl::GetFlag(FLAGS_renew_seconds) < 1 ||
      absl::GetFlag(FLAGS_renew_seconds) * 2 > absl::GetFlag(FLAGS_lease_seconds)) {
    std::cerr << "psd3d-worker: need --lease_seconds >= 2 and 1 <= --renew_seconds <= lease/2\n";
    return 2;
  }

  WorkerOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  if (options.name.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    options.name = absl::StrCat(host, "-", getpid());
  }
  options.lease.lease_time = absl::Seconds(absl::GetFlag(FLAGS_lease_seconds));
  options.lease.renew_interval = absl::Seconds(absl::GetFlag(FLAGS_renew_seconds));
  options.context.progress_interval = absl::Milliseconds(absl::GetFlag(FLAGS_progress_interval_ms));
  options.context.checkpoint_interval = absl::Seconds(absl::GetFlag(FLAGS_checkpoint_interval_seconds));
  options.idle_wait = absl::Milliseconds(absl::GetFlag(FLAGS_idle_wait_ms));
  options.max_jobs = absl::GetFlag(FLAGS_max_jobs);

  RedisPool pool(RedisOptionsFromFlags());
  {
    auto probe = pool.Acquire();
    if (!probe.ok()) {
      std::cerr << "psd3d-worker: cannot reach Redis: " << probe.status().message() << "\n";
      return 1;
    }
  }
  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  const std::string metrics_address = absl::GetFlag(FLAGS_metrics_address);
  if (!metrics_address.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_address);
      exposer->RegisterCollectable(registry);
    } catch (const std::exception& e) {
      std::cerr << "psd3d-worker: --metrics_address " << metrics_address << ": " << e.what() << "\n";
      return 1;
    }
  }
  std::shared_ptr<GpuMemoryCollector> gpu_memory;  // the exposer holds it weakly
  if (exposer && !absl::GetFlag(FLAGS_nvml_library).empty()) {
    std::string why;
    gpu_memory = GpuMemoryCollector::Load(absl::GetFlag(FLAGS_nvml_library), &why);
    if (gpu_memory) exposer->RegisterCollectable(gpu_memory);
    else PSD3D_LOG(kInfo, "worker", "no GPU memory metrics", {{"reason", why}});
  }
  WorkerMetrics metrics(*registry);
  JobLease store(&pool, QueueConfigFromFlags());
  WorkerRuntime runtime(&store, engine->get(), &metrics, options);
  OnTerminationSignal([&runtime](int) {
    PSD3D_LOG(kWarning, "worker", "termination signal: finishing the current step, checkpointing, releasing");
    runtime.Shutdown();
  });
  PSD3D_LOG(kInfo, "worker", "started", {{"name", options.name}, {"engine", engine_name}});
  auto s = runtime.Run();
  if (!s.ok()) {
    std::cerr << "psd3d-worker: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace psd3d
