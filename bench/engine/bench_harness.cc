// psd3d-engine-bench: runs every registered engine benchmark and prints one table.
#include "bench/engine/bench_harness.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <map>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "bench/engine/floors.h"

ABSL_FLAG(std::string, device, "auto", "cuda, cpu, or auto (cuda when available)");
ABSL_FLAG(std::string, filter, "", "Run only benchmarks whose name contains this");

namespace psd3d::bench {
namespace {

std::map<std::string, BenchFn>& Registry() {
  static auto* r = new std::map<std::string, BenchFn>();
  return *r;
}

void Sync(const at::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Device memory bandwidth measured by copying 1 GiB (read + write), bytes per second.
double MeasureBandwidth(const at::Device& d) {
  const int64_t n = d.is_cuda() ? (int64_t{1} << 28) : (int64_t{1} << 25);  // floats
  at::Tensor a = at::rand({n}, at::TensorOptions().device(d)), b = at::empty_like(a);
  double ms = TimeMs([&] { b.copy_(a); }, d);
  return 2.0 * n * sizeof(float) / (ms * 1e-3);
}

double Median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

double TimeMs(const std::function<void()>& fn, const at::Device& device, int warmup, int iters, double* host_ms) {
  for (int i = 0; i < warmup; ++i) fn();
  // Calls run back to back in batches with one synchronization per batch, so a short kernel's time is
  // not swamped by the synchronization round trip; the result is the median batch time per call.
  constexpr int kBatch = 5;
  using Clock = std::chrono::steady_clock;
  auto ms_per_call = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count() / kBatch;
  };
  std::vector<double> ms, host;
  for (int i = 0; i < iters; ++i) {
    Sync(device);
    const auto t0 = Clock::now();
    for (int k = 0; k < kBatch; ++k) fn();
    const auto issued = Clock::now();
    Sync(device);
    ms.push_back(ms_per_call(t0, Clock::now()));
    host.push_back(ms_per_call(t0, issued));
  }
  if (host_ms != nullptr) *host_ms = Median(host);
  return Median(ms);
}

bool Register(const std::string& name, BenchFn fn) {
  Registry()[name] = std::move(fn);
  return true;
}

}  // namespace psd3d::bench

int main(int argc, char** argv) {
  using namespace psd3d::bench;
  absl::SetProgramUsageMessage(
      "Times each engine kernel against its pure-LibTorch twin on one device and against its memory "
      "bound; prints a table.\nUsage: psd3d-engine-bench [--device=cuda] [--filter=hash]");
  absl::ParseCommandLine(argc, argv);
  std::string dev = absl::GetFlag(FLAGS_device);
  if (dev == "auto") dev = torch::cuda::is_available() ? "cuda" : "cpu";
  const at::Device device(dev);
  const double bw = MeasureBandwidth(device);
  const Floors floors = MeasureFloors(device);
  std::printf(
      "device %s, measured copy bandwidth %.0f GB/s; floors: kernel launch %.4f ms, device->host round trip "
      "%.4f ms, autograd backward pass of a 1-element op %.4f ms\n\n",
      dev.c_str(), bw / 1e9, floors.launch_ms, floors.sync_ms, floors.pass_ms);
  std::printf("%-30s %-26s %10s %8s %10s %9s %14s %10s %9s %10s %8s  %s\n", "kernel", "work", "kernel ms", "host ms",
              "twin ms", "speed-up", "throughput", "bound ms", "x bound", "floor ms", "x floor", "floor is");
  for (const auto& [name, fn] : Registry()) {
    if (!absl::StrContains(name, absl::GetFlag(FLAGS_filter))) continue;
    for (const Row& r : fn(device)) {
      const double bound_ms = r.min_bytes / bw * 1e3;
      // Each term alone is a lower bound on the op's time, so their maximum is one too.
      const std::pair<double, const char*> terms[] = {{bound_ms, "bytes"},
                                                      {r.traffic_ms, "gathers"},
                                                      {r.launches * floors.launch_ms, "launches"},
                                                      {r.host_syncs * floors.sync_ms, "round trips"},
                                                      {r.passes * floors.pass_ms, "backward pass"},
                                                      {r.op_ms, "autograd op"}};
      const auto& [floor_ms, floor_is] = *std::max_element(
          std::begin(terms), std::end(terms), [](const auto& a, const auto& b) { return a.first < b.first; });
      char tput[32] = "";
      if (r.items > 0) std::snprintf(tput, sizeof(tput), "%.3g %s/s", r.items / (r.kernel_ms * 1e-3), r.item_unit.c_str());
      std::printf("%-30s %-26s %10.3f %8.3f %10.3f %8.1fx %14s %10.4f %8.1fx %10.4f %7.1fx  %s\n", r.name.c_str(),
                  r.work.c_str(), r.kernel_ms, r.kernel_host_ms, r.twin_ms, r.twin_ms / r.kernel_ms, tput, bound_ms,
                  bound_ms > 0 ? r.kernel_ms / bound_ms : 0.0, floor_ms, floor_ms > 0 ? r.kernel_ms / floor_ms : 0.0,
                  floor_is);
    }
  }
  return 0;
}
