// The engine benchmark harness (GPU machine): each *_bench.cc registers cases that time a kernel and
// its pure-LibTorch twin on the same device and state the bytes the kernel must move at least, and
// psd3d-engine-bench prints one table: times, twin/kernel speed-up, kernel time over its bandwidth
// bound (bytes / measured device-copy bandwidth), and kernel time over its floor: the largest of that
// bound, its launches, round trips and backward passes at their measured cost, and its random L2
// traffic (floors.h).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

namespace psd3d::bench {

struct Row {
  std::string name;        // e.g. "hash grid fwd+bwd"
  std::string work;        // e.g. "2^20 pts, 16 levels"
  double kernel_ms = 0;    // median, CUDA path
  double kernel_host_ms = 0;  // median host time per call to issue the CUDA path (≈ kernel_ms: host-bound)
  double twin_ms = 0;      // median, pure-LibTorch path on the same device
  double min_bytes = 0;    // bytes the kernel must read + write at least
  double items = 0;        // work items (points, rays, triangles) for a throughput column
  std::string item_unit;   // "pts", "rays", "tris", "tets"
  // What the op's contract forces beyond its bytes (floors.h): kernel launches, device→host round trips
  // (data-dependent output sizes), autograd backward passes, and measured random-L2-traffic time.
  int launches = 1;
  int host_syncs = 0;
  int passes = 0;
  double traffic_ms = 0;
  // Time per call of an autograd op with the same inputs, outputs and launches that does no work
  // (floors.h, AutogradOpFloorMs): what the framework charges for a differentiable op's contract.
  double op_ms = 0;
};

// Median wall time per call in ms of `fn` after `warmup` calls: batches of calls run back to back
// between device synchronizations (so launch latency overlaps, as in a training loop). With `host_ms`,
// also the median time per call that the host spends issuing a batch (before waiting for the device).
double TimeMs(const std::function<void()>& fn, const at::Device& device, int warmup = 3, int iters = 10,
              double* host_ms = nullptr);

using BenchFn = std::function<std::vector<Row>(const at::Device&)>;
bool Register(const std::string& name, BenchFn fn);

}  // namespace psd3d::bench

#define PSD3D_CONCAT_INNER(a, b) a##b
#define PSD3D_CONCAT(a, b) PSD3D_CONCAT_INNER(a, b)
// Registers `fn` (a std::vector<Row>(const at::Device&) callable) under `name`.
#define PSD3D_ENGINE_BENCH(name, fn) \
  static const bool PSD3D_CONCAT(psd3d_bench_registered_, __LINE__) = ::psd3d::bench::Register(name, fn)
