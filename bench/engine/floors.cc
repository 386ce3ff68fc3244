#include "bench/engine/floors.h"

#include <torch/csrc/autograd/autograd.h>

#include "bench/engine/bench_harness.h"
#include "bench/engine/floors_cuda.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace psd3d::bench {

Floors MeasureFloors(const at::Device& device) {
  Floors f;
  if (!device.is_cuda()) return f;
  // The autograd engine hands a backward pass to its device thread and waits for it: every backward
  // pass pays this however little it computes.
  const at::Tensor x = at::ones({1}, at::TensorOptions().device(device)).requires_grad_(true);
  const at::Tensor g = at::ones_like(x);
  f.pass_ms = TimeMs([&] { torch::autograd::grad({x * 2}, {x}, {g}); }, device);
  // A data-dependent output size (marching tets' vertex and face counts) costs one round trip.
  f.sync_ms = TimeMs([&] { at::zeros({2}, at::TensorOptions().device(device).dtype(at::kLong)).cpu(); }, device);
#ifdef PSD3D_WITH_CUDA
  constexpr int kLaunches = 50;
  const char* error = nullptr;
  f.launch_ms = TimeMs([&] { error = LaunchEmptyKernels(kLaunches, at::cuda::getCurrentCUDAStream()); }, device) /
                kLaunches;
  TORCH_CHECK(error == nullptr, "launch floor: ", error);
#endif
  return f;
}

GatherFloorMs HashGridGatherFloor(int64_t points, const std::vector<GatherLevel>& levels, int64_t table_rows,
                                  const at::Device& device) {
  GatherFloorMs ms;
#ifdef PSD3D_WITH_CUDA
  if (!device.is_cuda() || levels.size() > static_cast<size_t>(kFloorMaxLevels)) return ms;
  GatherFloorLevels lv;
  lv.count = static_cast<int32_t>(levels.size());
  for (size_t l = 0; l < levels.size(); ++l) {
    TORCH_CHECK(levels[l].rows % 2 == 0 && levels[l].offset % 2 == 0, "gather floor: level ", l,
                " needs an even offset and row count (16-byte pairs)");
    lv.rows[l] = static_cast<uint32_t>(levels[l].rows);
    lv.offset[l] = levels[l].offset;
  }
  const auto o = at::TensorOptions().device(device);
  at::Tensor table = at::rand({table_rows, 2}, o), out = at::empty({lv.count, points, 2}, o);
  const at::Tensor dy = at::randn({lv.count, points, 2}, o);
  const char* error = nullptr;
  ms.gather = TimeMs(
      [&] {
        error = LaunchGatherFloor(points, table.data_ptr<float>(), lv, out.data_ptr<float>(),
                                  at::cuda::getCurrentCUDAStream());
      },
      device);
  TORCH_CHECK(error == nullptr, "gather floor: ", error);
  ms.scatter = TimeMs(
      [&] {
        error = LaunchScatterFloor(points, dy.data_ptr<float>(), lv, table.data_ptr<float>(), table.size(0),
                                   at::cuda::getCurrentCUDAStream());
      },
      device);
  TORCH_CHECK(error == nullptr, "scatter floor: ", error);
#else
  (void)points, (void)levels, (void)table_rows, (void)device;
#endif
  return ms;
}

}  // namespace psd3d::bench
