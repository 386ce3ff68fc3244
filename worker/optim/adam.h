// Adam (Kingma & Ba) over groups of leaf tensors, each group with its own learning rate. Written here
// rather than taken from torch::optim because its whole state must be a name → tensor map that a job
// checkpoint can hold and restore bit for bit (torch::optim keys state by tensor addresses and keeps
// <torch/torch.h> in every includer).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace psd3d {

struct AdamGroup {
  std::vector<at::Tensor> params;  // leaf tensors (requires_grad); updated in place
  double lr = 1e-3;
};

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-15;  // threestudio's defaults for 3D fields
};

class Adam {
 public:
  explicit Adam(std::vector<AdamGroup> groups, AdamOptions options = {});

  // One update from the parameters' .grad() (a parameter without gradient is left alone, and so is its
  // state); `grads`, when given, replaces .grad() (one tensor per parameter, in group order).
  void Step();
  void Step(const std::vector<at::Tensor>& grads);
  void ZeroGrad();
  void SetLr(size_t group, double lr) { groups_.at(group).lr = lr; }
  int64_t steps() const { return steps_; }

  // "steps", and "m.<g>.<i>" / "v.<g>.<i>" for each parameter that has state.
  std::map<std::string, at::Tensor> State() const;
  // INVALID_ARGUMENT naming a missing or mis-shaped entry; nothing changes unless all of it is valid.
  absl::Status LoadState(const std::map<std::string, at::Tensor>& state);

 private:
  void Update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, double lr) const;

  std::vector<AdamGroup> groups_;
  AdamOptions options_;
  std::vector<std::vector<at::Tensor>> m_, v_;  // undefined until a parameter's first gradient
  int64_t steps_ = 0;
};

}  // namespace psd3d
