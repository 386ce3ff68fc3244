// torch::nn module weights ↔ safetensors, so packs load on CPU with LibTorch 1.13 whatever wrote them
// (TorchScript archives from 2.x do not). Parameters and buffers are matched by their dotted names.
#pragma once

#include <map>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace torch::nn {
class Module;
}

namespace psd3d::tinyworld {

// Named parameters and buffers of `module`, detached, on CPU; floating ones converted to `dtype` (packs
// store at::kHalf to stay small; checkpoints keep at::kFloat).
std::map<std::string, at::Tensor> ModuleTensors(const torch::nn::Module& module, at::ScalarType dtype = at::kFloat);

// Copies `tensors` into `module`'s parameters and buffers (converted to their dtype and device).
// INVALID_ARGUMENT naming the first missing, unexpected or mis-shaped tensor: a pack that does not
// match the architecture in its manifest never half-loads.
absl::Status LoadModuleTensors(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
                               const std::string& prefix = "");

// `tensors` with every name prefixed by `prefix` + "." (several modules in one file; LoadModuleTensors
// with the same prefix reads them back).
std::map<std::string, at::Tensor> WithPrefix(const std::string& prefix, const std::map<std::string, at::Tensor>& tensors);

}  // namespace psd3d::tinyworld
