#include "worker/render/cuda_graph.h"

#include <map>
#include <string>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
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

}  // namespace

struct CapturedGraph {
  at::cuda::CUDAGraph graph;
  std::vector<at::Tensor> inputs, outputs;  // the graph's own tensors
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
    try {
      c10::cuda::CUDAStreamGuard stream_guard(side);
      for (int i = 0; i < 2; ++i) fn(g.inputs);
      g.graph.capture_begin();
      try {
        g.outputs = fn(g.inputs);
      } catch (...) {
        g.graph.capture_end();  // leave capture mode before reporting
        throw;
      }
      g.graph.capture_end();
      for (const at::Tensor& t : g.outputs)
        TORCH_CHECK(!t.defined() || !t.requires_grad(), "CudaGraphCall: outputs must not require grad");
      ++captured;
    } catch (const std::exception& e) {
      // PyTorch leaves the CUDA generator in capture mode after a failed capture, so carrying on
      // eagerly is not safe; fail with what went wrong.
      (void)cudaGetLastError();  // the failed capture's error must not surface at the next launch check
      TORCH_CHECK(false, "CudaGraphCall: could not capture the call as a CUDA graph (an op that reads on the host ",
                  "or copies from it?); run it eagerly instead (cuda_graphs=0): ", e.what());
    }
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
      std::unique_ptr<CapturedGraph>& g = graphs[Signature(inputs)];
      const bool fresh = g == nullptr;
      if (fresh) {
        auto captured_graph = std::make_unique<CapturedGraph>();
        Capture(*captured_graph, inputs);  // throws on failure, leaving the entry empty
        g = std::move(captured_graph);
      }
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

bool CudaGraphCall::Supported() {
#ifdef PSD3D_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace psd3d
