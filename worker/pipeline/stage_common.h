// What every optimization stage (nerf_stage, mesh_stage) and the pipeline share: resizing renders to
// the prior's size, the end of a step (finite checks, Adam), and the layout of checkpoint state
// (name prefixes; the optimizer, guidance, generator and step).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "worker/guidance/guidance.h"
#include "worker/optim/adam.h"

namespace psd3d {

// Renders [B,3,h,w] resized (bilinear) to [B,3,size,size]; unchanged when already that size.
at::Tensor ResizeRenders(const at::Tensor& images, int64_t size);

// After loss.backward(): one device-to-host copy of the loss, of whether every gradient of `checked`
// is finite and of the guidance's pending statistics (resolved into `guidance`); then Adam's step and
// ZeroGrad. FAILED_PRECONDITION "<stage>: loss is not finite at step N" (or "non-finite gradient")
// leaves the parameters as they were. `loss_value` receives the loss either way.
absl::Status FinishStep(const at::Tensor& loss, const std::vector<at::Tensor>& checked, GuidanceStats& guidance, Adam& adam,
                        absl::string_view stage, int64_t step, double* loss_value);

// {prefix + name: tensor}, and the entries under `prefix` with it removed.
std::map<std::string, at::Tensor> WithPrefix(const std::map<std::string, at::Tensor>& state, const std::string& prefix);
std::map<std::string, at::Tensor> Unprefixed(const std::map<std::string, at::Tensor>& state, const std::string& prefix);

// The checkpoint entries every stage has besides its own parameters: "adam.*", "guidance.*" (ψ and
// its optimizer), "rng" (the stage's generator) and "step".
void PutTrainingState(const Adam& adam, const Guidance& guidance, const at::Generator& generator, int64_t step,
                      std::map<std::string, at::Tensor>* state);
// Loads them back. INVALID_ARGUMENT "<stage> state: 'rng' or 'step' missing" before anything is
// changed; then the optimizer's and the guidance's own errors.
absl::Status LoadTrainingState(const std::map<std::string, at::Tensor>& state, absl::string_view stage, Adam& adam,
                               Guidance& guidance, at::Generator& generator, int64_t* step);

}  // namespace psd3d
