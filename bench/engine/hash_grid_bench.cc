// Hash-grid encoding: the CUDA kernel against its pure-LibTorch twin on the same device, at the stage-1
// NeRF's config (16 levels, F=2, 2^19 rows per level) on 2^20 points (2^14 on the CPU, where both
// columns run the twin): uniformly random points (the benchmark), and the same number of
// samples along rays (64 consecutive samples per ray, as a NeRF batch comes), where neighbouring
// threads share the coarse levels' rows.
//
// The bound ("x bound" = kernel time / (min_bytes / measured copy bandwidth)) is the DRAM traffic any
// correct kernel has to move, each byte once:
//   forward   reads x (12 B/pt) and every table row (50 MB here: 2^20 points × 8 vertices touch all of
//             each level's ≤ 2^19 rows), and writes y (L·F·4 = 128 B/pt);
//   backward  reads x and dy (128 B/pt) and writes the table gradient once (reachable: a level group's
//             slices fit in L2, so zero-filling each just before adding into it writes every line back
//             once; this implementation zero-fills the whole table first, which costs ~0.03 ms more).
// The 8 gathers (forward) and 8 atomic adds (backward) per point and level (134M each here) are not
// counted: a level's slice fits in L2, so they need not reach DRAM, and counting them as DRAM bytes
// would give a "bound" that a good kernel beats. They are what limits the kernels, though: random 8- and
// 16-byte requests to L2 take ~45 µs per level for the gathers and ~80 µs for the atomics on an H100
// with random points, against the bound's ~8 µs per level for both passes, so a kernel that does them
// stays ~10-15x above this bound unless it avoids them (e.g. points sorted so that a warp shares rows,
// which the encoding cannot assume and which pays only on the coarse levels: see hash_grid.cu).
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "bench/engine/bench_harness.h"
#include "bench/engine/floors.h"
#include "worker/fields/hash_grid.h"

namespace psd3d {
namespace {

using EncodeFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const HashGridConfig&);

constexpr int64_t kSamplesPerUnit = 128;  // ray samples' spacing is 1/128

// n samples on n/64 rays: origins uniform in the unit cube, random directions, 1/128 apart (points
// leaving the cube are clamped by the encoding, as a renderer's would be masked).
at::Tensor RaySamples(int64_t n, at::Generator& gen) {
  const int64_t rays = n / 64;
  const at::Tensor origin = at::rand({rays, 1, 3}, gen);
  const at::Tensor dir = at::randn({rays, 1, 3}, gen);
  const at::Tensor t = at::arange(64, at::kFloat).view({1, 64, 1}) / static_cast<double>(kSamplesPerUnit);
  return (origin + t * dir / dir.norm(2, -1, true)).reshape({n, 3});
}

std::vector<bench::Row> HashGridBench(const at::Device& device) {
  const HashGridConfig config;
  const HashGridLayout layout = ComputeHashGridLayout(config);
  const bool cuda = device.is_cuda();
  const int64_t n = cuda ? (int64_t{1} << 20) : (int64_t{1} << 14);
  at::Generator gen = at::detail::createCPUGenerator(0);
  const at::Tensor x = at::rand({n, 3}, gen).to(device);
  const at::Tensor rays = RaySamples(n, gen).to(device);
  const at::Tensor table = InitHashGridTable(config, gen, device).requires_grad_(true);
  const at::Tensor frozen = table.detach();
  const at::Tensor dy = at::randn({n, layout.output_dim()}, gen).to(device);

  auto forward = [&](EncodeFn encode) { return [&, encode] { encode(x, frozen, config); }; };
  auto forward_backward = [&](EncodeFn encode, const at::Tensor& points) {
    return [&, encode] { torch::autograd::grad({encode(points, table, config)}, {table}, {dy}); };
  };

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
  // The random L2 requests of uniformly random points (floors.h), measured with this layout. Ray
  // samples are coherent on the coarse levels (a warp's samples share cells) and where they are clamped
  // to the cube's faces. But consecutive samples 1/128 apart are at least 1/(128·√3) apart along some
  // axis, so on a level with res ≥ 2·√3·128 their cells are two or more apart and share no corner:
  // there the samples inside the cube issue requests as scattered as random points'. That traffic
  // alone (those levels, those samples) is a floor for the ray samples; the rest adds to it, uncounted.
  std::vector<bench::GatherLevel> levels, fine_levels;
  for (const HashGridLevel& l : layout.levels) {
    levels.push_back({l.size, l.offset});
    if (static_cast<double>(l.resolution) >= 2 * std::sqrt(3.0) * kSamplesPerUnit)
      fine_levels.push_back({l.size, l.offset});
  }
  const int64_t inside = ((rays >= 0) & (rays <= 1)).all(1).sum().item<int64_t>();
  const bench::GatherFloorMs traffic = bench::HashGridGatherFloor(n, levels, layout.total_params, device);
  const bench::GatherFloorMs ray_traffic =
      bench::HashGridGatherFloor(inside, fine_levels, layout.total_params, device);

  bench::Row fwd = row("hash grid fwd");
  fwd.traffic_ms = traffic.gather;
  fwd.kernel_ms = bench::TimeMs(forward(&HashGridEncode), device, 3, 10, &fwd.kernel_host_ms);
  fwd.twin_ms = bench::TimeMs(forward(&HashGridEncodeTwin), device);
  fwd.min_bytes = fwd_bytes;

  bench::Row both = row("hash grid fwd+bwd");
  both.kernel_ms = bench::TimeMs(forward_backward(&HashGridEncode, x), device, 3, 10, &both.kernel_host_ms);
  both.twin_ms = bench::TimeMs(forward_backward(&HashGridEncodeTwin, x), device);
  both.min_bytes = fwd_bytes + bwd_bytes;
  both.traffic_ms = traffic.gather + traffic.scatter;
  both.launches = 3;  // forward, zero fill, backward
  both.passes = 1;

  bench::Row on_rays = row("hash grid fwd+bwd, ray pts");
  on_rays.kernel_ms =
      bench::TimeMs(forward_backward(&HashGridEncode, rays), device, 3, 10, &on_rays.kernel_host_ms);
  on_rays.twin_ms = bench::TimeMs(forward_backward(&HashGridEncodeTwin, rays), device);
  on_rays.min_bytes = fwd_bytes + bwd_bytes;
  on_rays.launches = 3;
  on_rays.passes = 1;
  on_rays.traffic_ms = ray_traffic.gather + ray_traffic.scatter;
  return {fwd, both, on_rays};
}

PSD3D_ENGINE_BENCH("hash grid fwd+bwd", HashGridBench);

}  // namespace
}  // namespace psd3d
