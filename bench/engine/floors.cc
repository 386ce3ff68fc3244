#include "bench/engine/floors.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

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

#ifdef PSD3D_WITH_CUDA
namespace {

// The no-work op of AutogradOpFloorMs. Its contract is a static of the timing call, not saved_data: the
// rasterizer's Function keeps nothing there, and the floor must not cost more host work than the op.
class NullOp : public torch::autograd::Function<NullOp> {
 public:
  static inline const OpContract* active = nullptr;  // set by AutogradOpFloorMs

  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a,
                                                const at::Tensor& b) {
    const at::Tensor scratch = at::empty({active->scratch_bytes}, a.options().dtype(at::kByte));
    const char* error = LaunchEmptyKernels(active->forward_launches, at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(error == nullptr, "autograd op floor: ", error);
    torch::autograd::variable_list out;
    for (const at::Tensor& t : active->outputs) out.push_back(at::empty_like(t));
    ctx->save_for_backward({a, b, scratch, out.front()});
    for (int k = 0; k < active->non_differentiable; ++k) ctx->mark_non_differentiable({out[k]});
    ctx->set_materialize_grads(false);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& a = saved[0];
    const at::Tensor& b = saved[1];
    const at::Tensor buffer = at::zeros({active->grad_buffer_floats}, a.options());
    const char* error = LaunchEmptyKernels(active->backward_launches, at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(error == nullptr, "autograd op floor: ", error);
    return {buffer.narrow(0, 0, a.numel()).view(a.sizes()), buffer.narrow(0, a.numel(), b.numel()).view(b.sizes()),
            at::Tensor()};
  }
};

}  // namespace
#endif

double AutogradOpFloorMs(const OpContract& contract, int calls) {
  double ms = 0;
#ifdef PSD3D_WITH_CUDA
  if (!contract.input_a.is_cuda()) return ms;
  TORCH_CHECK(contract.grad_buffer_floats >= contract.input_a.numel() + contract.input_b.numel(),
              "autograd op floor: the gradient buffer must hold both inputs' gradients");
  std::vector<at::Tensor> a, b;
  for (int k = 0; k < calls; ++k) {
    a.push_back(contract.input_a.detach().clone().requires_grad_(true));
    b.push_back(contract.input_b.detach().clone().requires_grad_(true));
  }
  std::vector<at::Tensor> upstream;
  for (const int o : contract.upstream) upstream.push_back(at::ones_like(contract.outputs[o]));
  NullOp::active = &contract;  // until TimeMs returns: every backward pass has ended by then
  ms = TimeMs(
           [&] {
             std::vector<at::Tensor> outputs, grads, inputs;
             for (int k = 0; k < calls; ++k) {
               const auto out = NullOp::apply(a[k], b[k]);
               for (size_t u = 0; u < contract.upstream.size(); ++u) {
                 outputs.push_back(out[contract.upstream[u]]);
                 grads.push_back(upstream[u]);
               }
               inputs.insert(inputs.end(), {a[k], b[k]});
             }
             torch::autograd::grad(outputs, inputs, grads);
           },
           contract.input_a.device()) /
       calls;
  NullOp::active = nullptr;
#else
  (void)contract, (void)calls;
#endif
  return ms;
}

double FragmentGatherFloorMs(const at::Tensor& clip, const at::Tensor& faces, const at::Tensor& ids,
                             const at::Tensor& attr) {
  double ms = 0;
#ifdef PSD3D_WITH_CUDA
  if (!clip.is_cuda()) return ms;
  TORCH_CHECK(clip.size(0) == 1 && ids.size(0) == 1 && attr.size(0) == 1, "fragment gather floor: one image");
  // clone: a fresh allocation, so the 16-byte vertex loads are aligned.
  const at::Tensor c = clip.to(at::kFloat).contiguous().clone(), f = faces.to(at::kLong).contiguous();
  const at::Tensor a = attr.to(at::kFloat).contiguous(), id = ids.to(at::kLong).contiguous();
  const int64_t pixels = id.numel(), channels = a.size(2);
  const auto o = c.options();
  at::Tensor bary = at::empty({pixels, 3}, o), depth = at::empty({pixels}, o), mask = at::empty({pixels}, o);
  at::Tensor out = at::empty({pixels, channels}, o);
  const char* error = nullptr;
  ms = TimeMs(
      [&] {
        error = LaunchFragmentGatherFloor(pixels, id.data_ptr<int64_t>(), f.data_ptr<int64_t>(), c.data_ptr<float>(),
                                          a.data_ptr<float>(), static_cast<int>(channels), bary.data_ptr<float>(),
                                          depth.data_ptr<float>(), mask.data_ptr<float>(), out.data_ptr<float>(),
                                          at::cuda::getCurrentCUDAStream());
      },
      clip.device());
  TORCH_CHECK(error == nullptr, "fragment gather floor: ", error);
#else
  (void)clip, (void)faces, (void)ids, (void)attr;
#endif
  return ms;
}

}  // namespace psd3d::bench
