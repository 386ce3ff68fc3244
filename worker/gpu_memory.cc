#include "worker/gpu_memory.h"

#include <dlfcn.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <mutex>

namespace psd3d {
namespace {

// The few NVML declarations used (nvml.h, stable ABI since NVML 5); no CUDA headers needed to build.
using NvmlReturn = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

}  // namespace

struct GpuMemoryCollector::Api {
  void* handle = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*count)(unsigned*) = nullptr;
  NvmlReturn (*by_index)(unsigned, NvmlDevice*) = nullptr;
  NvmlReturn (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  mutable std::mutex mu;  // NVML is thread-safe; this only keeps scrapes from overlapping
};

std::shared_ptr<GpuMemoryCollector> GpuMemoryCollector::Load(const std::string& library, std::string* why) {
  auto api = std::make_unique<Api>();
  api->handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api->handle == nullptr) {
    *why = dlerror();
    return nullptr;
  }
  auto sym = [&](const char* name, auto* fn) {
    *reinterpret_cast<void**>(fn) = dlsym(api->handle, name);
    return *fn != nullptr;
  };
  if (!sym("nvmlInit_v2", &api->init) || !sym("nvmlShutdown", &api->shutdown) ||
      !sym("nvmlDeviceGetCount_v2", &api->count) || !sym("nvmlDeviceGetHandleByIndex_v2", &api->by_index) ||
      !sym("nvmlDeviceGetMemoryInfo", &api->memory)) {
    *why = library + " lacks an NVML function";
    dlclose(api->handle);
    return nullptr;
  }
  unsigned n = 0;
  if (NvmlReturn r = api->init(); r != 0) {
    *why = "nvmlInit failed with code " + std::to_string(r);
    dlclose(api->handle);
    return nullptr;
  }
  if (api->count(&n) != 0 || n == 0) {
    *why = "NVML sees no GPU";
    api->shutdown();
    dlclose(api->handle);
    return nullptr;
  }
  return std::shared_ptr<GpuMemoryCollector>(new GpuMemoryCollector(std::move(api)));
}

GpuMemoryCollector::GpuMemoryCollector(std::unique_ptr<Api> api) : api_(std::move(api)) {}

GpuMemoryCollector::~GpuMemoryCollector() {
  api_->shutdown();
  dlclose(api_->handle);
}

std::vector<prometheus::MetricFamily> GpuMemoryCollector::Collect() const {
  std::lock_guard<std::mutex> lock(api_->mu);
  prometheus::MetricFamily used{"psd3d_worker_gpu_memory_used_bytes",
                                "GPU memory in use on each GPU this worker sees (NVML; every process on it)",
                                prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily total{"psd3d_worker_gpu_memory_total_bytes", "GPU memory of each GPU this worker sees",
                                 prometheus::MetricType::Gauge, {}};
  unsigned n = 0;
  if (api_->count(&n) == 0) {
    for (unsigned i = 0; i < n; ++i) {
      NvmlDevice dev = nullptr;
      NvmlMemory mem{};
      if (api_->by_index(i, &dev) != 0 || api_->memory(dev, &mem) != 0) continue;
      prometheus::ClientMetric m;
      m.label = {{"gpu", std::to_string(i)}};
      m.gauge.value = static_cast<double>(mem.used);
      used.metric.push_back(m);
      m.gauge.value = static_cast<double>(mem.total);
      total.metric.push_back(m);
    }
  }
  return {used, total};
}

}  // namespace psd3d
