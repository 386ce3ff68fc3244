// Replays a fixed-shape GPU computation as a CUDA graph.
//
// A training step of the tiny prior is launch-bound on the GPU: the UNet's forward and backward issue
// hundreds of small kernels, and the host needs longer to issue them than the GPU to run them. A CUDA
// graph records the launches once and replays them with one call. CudaGraphCall wraps a function of
// tensors: on CUDA inputs it captures one graph per input signature (shapes, dtypes, device) after an
// eager warm-up on a side stream, then copies each call's inputs into the graph's own input tensors and
// replays. On CPU inputs, in a build without CUDA, or when disabled, it calls the function directly, so
// both paths run the same code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

namespace psd3d {

class CudaGraphCall {
 public:
  using Fn = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>& inputs)>;

  // `fn` must be a function of its inputs and of tensors that keep their storage (weights, fixed
  // contexts) only: no reads on the host, no host→device copies, no random draws. Autograd inside it is
  // fine (torch::autograd::grad: the backward is captured too); outputs must not require grad.
  explicit CudaGraphCall(Fn fn, bool enabled = true);
  ~CudaGraphCall();
  CudaGraphCall(const CudaGraphCall&) = delete;
  CudaGraphCall& operator=(const CudaGraphCall&) = delete;

  // fn(inputs), replayed from a graph where possible. A replay's outputs are the graph's own tensors,
  // overwritten by the next call with the same signature: use them (or clone them) before that. Work
  // is ordered on the current CUDA stream like any other op. Each graph keeps its intermediates in a
  // memory pool of its own for the object's lifetime. If capturing fails (an op that cannot be
  // captured), this and every later call with that signature throw c10::Error saying why. PyTorch
  // leaves its allocator (and its CUDA generator, which this class resets) in capture state after a
  // capture that could not end, so neither a retry nor an eager fallback in the same process is safe.
  std::vector<at::Tensor> operator()(const std::vector<at::Tensor>& inputs);

  // Graphs captured so far, and calls served by replaying one (for tests and benchmarks).
  int64_t graphs() const;
  int64_t replays() const;
  // Whether this build can capture graphs at all (Torch with CUDA).
  static bool Supported();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d
