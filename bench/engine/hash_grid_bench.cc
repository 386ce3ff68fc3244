// Hash-grid encoding: the CUDA kernel against its pure-LibTorch twin on the same device, at the stage-1
// NeRF's config (16 levels, F=2, 2^19 rows per level) on 2^20 uniformly random points (2^14 on the CPU,
// where both columns run the twin).
#include <torch/csrc/autograd/autograd.h>

#include "bench/engine/bench_harness.h"
#include "worker/fields/hash_grid.h"

namespace psd3d {
namespace {

using EncodeFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const HashGridConfig&);

std::vector<bench::Row> HashGridBench(const at::Device& device) {
  const HashGridConfig config;
  const HashGridLayout layout = ComputeHashGridLayout(config);
  const bool cuda = device.is_cuda();
  const int64_t n = cuda ? (int64_t{1} << 20) : (int64_t{1} << 14);
  at::Generator gen = at::detail::createCPUGenerator(0);
  const at::Tensor x = at::rand({n, 3}, gen).to(device);
  const at::Tensor table = InitHashGridTable(config, gen, device).requires_grad_(true);
  const at::Tensor frozen = table.detach();
  const at::Tensor dy = at::randn({n, layout.output_dim()}, gen).to(device);

  auto forward = [&](EncodeFn encode) { return [&, encode] { encode(x, frozen, config); }; };
  auto forward_backward = [&](EncodeFn encode) {
    return [&, encode] { torch::autograd::grad({encode(x, table, config)}, {table}, {dy}); };
  };

  // The honest lower bound is the compulsory DRAM traffic, not the gathers: 2^20 points × 16 levels × 8
  // corners touch every row of every level many times over, but one level's slice (≤ 4 MiB) fits in L2
  // and the kernel runs level by level, so each table row has to come from DRAM only once (forward),
  // and each gradient row has to go back only once (backward; the zero fill is counted as that write).
  // Counting the 8 · L · F · 4 bytes of gathers per point (1 GiB here) would be a bound a good kernel
  // beats, i.e. no bound. So: forward reads x and the table and writes y; backward reads x and dy and
  // writes the table gradient.
  const double table_bytes = static_cast<double>(layout.total_params) * layout.features * sizeof(float);
  const double x_bytes = static_cast<double>(n) * 3 * sizeof(float);
  const double y_bytes = static_cast<double>(n) * layout.output_dim() * sizeof(float);
  const double fwd_bytes = x_bytes + table_bytes + y_bytes;
  const double bwd_bytes = x_bytes + y_bytes + table_bytes;
  const std::string work = std::string(cuda ? "2^20" : "2^14") + " pts, 16 lv, F=2, T=2^19";

  auto row = [&](const char* name) {
    bench::Row r;
    r.name = name;
    r.work = work;
    r.items = static_cast<double>(n);
    r.item_unit = "pts";
    return r;
  };
  bench::Row fwd = row("hash grid fwd");
  fwd.kernel_ms = bench::TimeMs(forward(&HashGridEncode), device);
  fwd.twin_ms = bench::TimeMs(forward(&HashGridEncodeTwin), device);
  fwd.min_bytes = fwd_bytes;

  bench::Row both = row("hash grid fwd+bwd");
  both.kernel_ms = bench::TimeMs(forward_backward(&HashGridEncode), device);
  both.twin_ms = bench::TimeMs(forward_backward(&HashGridEncodeTwin), device);
  both.min_bytes = fwd_bytes + bwd_bytes;
  return {fwd, both};
}

PSD3D_ENGINE_BENCH("hash grid fwd+bwd", HashGridBench);

}  // namespace
}  // namespace psd3d
