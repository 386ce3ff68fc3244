// The stage-1 (coarse) NeRF field: threestudio's "implicit-volume" geometry with a hash-grid encoding.
//
//   u       = (x / radius + 1) / 2                     world point → [0,1]³ (clamped by the encoding)
//   enc     = HashGridEncode(u)                        [L·F], default 16 levels × 2 features
//   density = softplus(density_mlp(enc) + blob(x)),    blob(x) = blob_scale · (1 − |x| / blob_std)
//   albedo  = sigmoid(feature_mlp(enc))                [3]
// Each MLP is threestudio's VanillaMLP: Linear(in, 64) → ReLU → Linear(64, out), no biases, float32.
// The blob (threestudio's blob_magic3d: scale 10, std 0.5) makes the field start as a soft ball of
// radius ~0.5 around the origin, so that early renders have a silhouette for the guidance to shape.
// Normals are −∇density / |∇density| by central differences (eps 0.01, threestudio's
// finite_difference normals): the hash grid provides no gradient with respect to its input.
//
// A plain class rather than a torch::nn::Module (keeps <torch/torch.h> out of the engine): parameters
// are leaf tensors with requires_grad, handed to the optimizer in two groups (the encoding and the
// MLPs take different learning rates), and the state is a name → tensor map for safetensors.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "worker/fields/field_sample.h"
#include "worker/fields/hash_grid.h"

namespace psd3d {

struct NerfFieldConfig {
  HashGridConfig encoding;
  double radius = 1.0;       // the field covers [−radius, radius]³
  int mlp_width = 64;        // hidden neurons of each MLP (one hidden layer)
  double blob_scale = 10.0;  // density bias at the origin
  double blob_std = 0.5;     // radius where the bias crosses 0
  double normal_eps = 0.01;  // central-difference step, world units
};

// OK, or INVALID_ARGUMENT naming the bad field (including the encoding's).
absl::Status ValidateNerfFieldConfig(const NerfFieldConfig& config);

class NerfField {
 public:
  // Parameters drawn from a CPU generator seeded with `seed` (same seed → same field on any device):
  // the table uniform in ±1e-4 (tcnn), MLP weights uniform in ±1/√fan_in (PyTorch's Linear default).
  // TORCH_CHECKs the config (see ValidateNerfFieldConfig).
  NerfField(const NerfFieldConfig& config, uint64_t seed, const at::Device& device = at::kCPU);

  // points [...,3] float32 in world space on the field's device.
  FieldSample Forward(const at::Tensor& points) const;
  at::Tensor Density(const at::Tensor& points) const;  // [...]
  at::Tensor Albedo(const at::Tensor& points) const;   // [...,3]: the color alone (mesh stages, export)
  at::Tensor Normals(const at::Tensor& points) const;  // [...,3] unit, outward (down the density)

  struct ParameterGroups {
    std::vector<at::Tensor> encoding;  // the hash-grid table
    std::vector<at::Tensor> mlp;       // density and feature MLP weights
    std::vector<at::Tensor> All() const {  // encoding, then mlp
      std::vector<at::Tensor> all = encoding;
      all.insert(all.end(), mlp.begin(), mlp.end());
      return all;
    }
  };
  ParameterGroups Parameters() const;

  // Names: "encoding.table", "density_network.{0,1}.weight", "feature_network.{0,1}.weight"; weights
  // are [out, in] like torch.nn.Linear. The map's tensors are detached aliases of the parameters.
  std::map<std::string, at::Tensor> StateDict() const;
  // Copies a saved state into the parameters in place (optimizer references stay valid). Every name
  // must be present with the same shape, a floating dtype and finite values; unknown names are
  // errors. Nothing is changed unless the whole state is valid.
  absl::Status LoadStateDict(const std::map<std::string, at::Tensor>& state);

  const NerfFieldConfig& config() const { return config_; }
  at::Device device() const { return table_.device(); }

 private:
  std::vector<std::pair<std::string, at::Tensor>> Named() const;
  at::Tensor Encode(const at::Tensor& flat_points) const;  // [M,3] world → [M, L·F]
  at::Tensor ActivatedDensity(const at::Tensor& flat_points, const at::Tensor& enc) const;  // [M]
  void CheckPoints(const at::Tensor& points) const;

  NerfFieldConfig config_;
  at::Tensor table_;                    // [rows, F]
  at::Tensor density_w0_, density_w1_;  // [width, L·F], [1, width]
  at::Tensor feature_w0_, feature_w1_;  // [width, L·F], [3, width]
};

}  // namespace psd3d
