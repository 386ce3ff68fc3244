#include "worker/render/cuda_graph.h"

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"
#include "worker/cuda_build.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/version.h>
#endif

namespace psd3d {

#ifdef PSD3D_WITH_CUDA
namespace {

// Shapes, strides, dtypes and device of the inputs: a graph replays only for inputs laid out as the ones
// it was captured with.
std::string Signature(const std::vector<at::Tensor>& inputs) {
  std::string key;
  for (const at::Tensor& t : inputs) {
    absl::StrAppend(&key, t.device().str(), ":", c10::toString(t.scalar_type()), "[");
    for (int64_t d = 0; d < t.dim(); ++d) absl::StrAppend(&key, t.size(d), "/", t.stride(d), ",");
    absl::StrAppend(&key, "]");
  }
  return key;
}

// A capture that cannot end (cudaStreamEndCapture fails) leaves the device's default generator in capture
// mode: PyTorch ends that mode only after a successful end, so every later random draw on the device
// would fail ("Offset increment outside graph capture"). Give the generator a fresh state with the same
// seed and offset, so the process stays usable (graphsafe_set_state: LibTorch 2.4 and later).
void ResetGeneratorAfterFailedCapture(c10::DeviceIndex device) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::Generator gen = at::cuda::detail::getDefaultCUDAGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  at::Generator fresh = at::make_generator<at::CUDAGeneratorImpl>(device);
  fresh.set_current_seed(gen.current_seed());
  fresh.set_offset(gen.get_offset());
  gen.graphsafe_set_state(fresh);
#else
  (void)device;
#endif
}

}  // namespace

struct CapturedGraph {
  at::cuda::CUDAGraph graph;
  std::vector<at::Tensor> inputs, outputs;  // the graph's own tensors
  std::string failure;                      // why capturing failed ("" once captured)
};
#else
struct CapturedGraph {};
#endif

struct CudaGraphCall::Impl {
  Fn fn;
  bool enabled;
  std::map<std::string, std::unique_ptr<CapturedGraph>> graphs;
  int64_t captured = 0, replays = 0;

#ifdef PSD3D_WITH_CUDA
  // Warm-up and capture on a side stream (capture needs a stream other than the legacy default one, and
  // warm-up there makes cuBLAS and the allocator set up what the capture will use), then hand ordering
  // back to the caller's stream.
  void Capture(CapturedGraph& g, const std::vector<at::Tensor>& inputs) {
    const c10::Device device = inputs.front().device();
    c10::cuda::CUDAGuard device_guard(device);
    const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(device.index());
    const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
    for (const at::Tensor& t : inputs) g.inputs.push_back(t.detach().clone(at::MemoryFormat::Preserve));
    at::cuda::CUDAEvent ready;
    ready.record(caller);
    ready.block(side);
    {
      c10::cuda::CUDAStreamGuard stream_guard(side);
      for (int i = 0; i < 2; ++i) fn(g.inputs);  // the function's own errors surface here, unchanged
      g.graph.capture_begin();
      try {
        g.outputs = fn(g.inputs);
      } catch (const std::exception& e) {
        g.failure = e.what();
      }
      try {
        g.graph.capture_end();
      } catch (const std::exception& e) {
        if (g.failure.empty()) g.failure = e.what();
      }
    }
    for (const at::Tensor& t : g.outputs)
      if (g.failure.empty() && t.defined() && t.requires_grad()) g.failure = "its outputs must not require grad";
    if (!g.failure.empty()) {
      (void)cudaGetLastError();  // the failed capture's error must not surface at the next launch check
      ResetGeneratorAfterFailedCapture(device.index());
      g.outputs.clear();
      return;
    }
    ++captured;
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(caller);
  }
#endif

  std::vector<at::Tensor> Run(const std::vector<at::Tensor>& inputs) {
#ifdef PSD3D_WITH_CUDA
    bool cuda = enabled && !inputs.empty();
    for (const at::Tensor& t : inputs) cuda = cuda && t.defined() && t.is_cuda() && t.device() == inputs[0].device();
    if (cuda) {
      const std::string key = Signature(inputs);
      auto it = graphs.find(key);
      const bool fresh = it == graphs.end();
      if (fresh) {
        auto captured_graph = std::make_unique<CapturedGraph>();
        Capture(*captured_graph, inputs);  // the function's own errors (in warm-up) leave no entry
        it = graphs.emplace(key, std::move(captured_graph)).first;
      }
      CapturedGraph* g = it->second.get();
      // A failed capture is not retried and does not fall back to eager runs: PyTorch leaves its
      // allocator's capture pool in capture state when the capture could not end (the generator is
      // reset above), so the process should stop using CUDA graphs.
      TORCH_CHECK(g->failure.empty(), "CudaGraphCall: could not capture the call as a CUDA graph (an op that ",
                  "reads on the host or copies from it?); run it eagerly instead (cuda_graphs=0): ", g->failure);
      if (!fresh)
        for (size_t i = 0; i < inputs.size(); ++i) g->inputs[i].copy_(inputs[i]);
      // Capture only records the work: the first call replays too.
      g->graph.replay();
      ++replays;
      return g->outputs;
    }
#endif
    return fn(inputs);
  }
};

CudaGraphCall::CudaGraphCall(Fn fn, bool enabled) : impl_(std::make_unique<Impl>()) {
  impl_->fn = std::move(fn);
  impl_->enabled = enabled;
}
CudaGraphCall::~CudaGraphCall() = default;

std::vector<at::Tensor> CudaGraphCall::operator()(const std::vector<at::Tensor>& inputs) { return impl_->Run(inputs); }
int64_t CudaGraphCall::graphs() const { return impl_->captured; }
int64_t CudaGraphCall::replays() const { return impl_->replays; }

bool CudaGraphCall::Supported() { return kBuiltWithCuda; }

}  // namespace psd3d
