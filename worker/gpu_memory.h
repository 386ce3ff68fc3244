// GPU memory of this worker's devices for /metrics, read from NVML at scrape time. NVML is loaded at
// run time (dlopen), so the worker builds and runs without NVIDIA libraries: on a machine without
// them it exports no GPU series. In a GPU container the NVIDIA runtime mounts libnvidia-ml.so.1 and
// NVML lists only the GPUs given to the container.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <string>
#include <vector>

namespace psd3d {

class GpuMemoryCollector : public prometheus::Collectable {
 public:
  // Loads `library` (e.g. libnvidia-ml.so.1) and initializes NVML; nullptr with the reason in *why when
  // the library is missing or has no GPU.
  static std::shared_ptr<GpuMemoryCollector> Load(const std::string& library, std::string* why);
  ~GpuMemoryCollector() override;

  // psd3d_worker_gpu_memory_used_bytes{gpu} and psd3d_worker_gpu_memory_total_bytes{gpu}.
  std::vector<prometheus::MetricFamily> Collect() const override;

  struct Api;

 private:
  explicit GpuMemoryCollector(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace psd3d
