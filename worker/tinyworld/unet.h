// The tiny prior's noise predictor: a small UNet for 64×64 RGB (pixel space), in the style of DDPM/ADM
// and Stable Diffusion's UNet, sized to stay well under 3M parameters.
//
//   emb = MLP(sinusoid(t)) + MLP(sin e, cos e, sin a, cos a)      timestep + camera (MVDream-style)
//   down: level i (side image_size/2^i, width channels[i]): res_blocks × [ResBlock(emb) → attention],
//         then a stride-2 conv (not after the last level); every output is kept as a skip
//   middle: ResBlock → attention (self + cross), at the last level's side
//   up: mirrored, res_blocks + 1 blocks per level, each reading one skip (concatenated), then nearest
//       2× upsampling + conv
//   out: GroupNorm → SiLU → conv to image_channels
//
// ResBlock: GroupNorm → SiLU → conv3×3, + Linear(SiLU(emb)) per channel, GroupNorm → SiLU → conv3×3,
// plus the (1×1-projected) input. Attention at a level: self-attention over the H·W positions where the
// side is ≤ self_attention_max_size (quadratic in H·W, so 16×16 by default), cross-attention to the
// text context where the side is ≤ cross_attention_max_size (linear in H·W: 32×32 is cheap). Both are
// plain matmul + softmax. The last layer of every residual branch and of the output starts at zero, so
// the network starts as an identity-like map and trains stably.
//
// The torch::nn module lives behind a pointer (pimpl) so this header needs only ATen.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/formats/json_lite.h"

namespace torch::nn {
class Module;
}

namespace psd3d::tinyworld {

struct UNetConfig {
  int64_t image_channels = 3;
  int64_t image_size = 64;                        // must be divisible by 2^(levels − 1)
  std::vector<int64_t> channels = {32, 64, 128};  // width of each level (level i at image_size / 2^i)
  int64_t res_blocks = 1;                         // per level going down (one more going up)
  int64_t self_attention_max_size = 16;           // self-attention at levels with side ≤ this, and the middle
  int64_t cross_attention_max_size = 32;          // cross-attention at levels with side ≤ this, and the middle
  int64_t head_dim = 32;                          // heads = width / head_dim (a divisor of widths with attention)
  int64_t context_dim = 128;                      // D of the text context
  int64_t embed_dim = 128;                        // timestep + camera embedding width
  int64_t groups = 8;                             // GroupNorm groups; every width must be a multiple
};

// OK, or INVALID_ARGUMENT naming the bad field.
absl::Status ValidateUNetConfig(const UNetConfig& config);
// The config as a JSON object (field names as above) and back; FromJson validates and names missing or
// bad keys.
JsonValue UNetConfigToJson(const UNetConfig& config);
absl::StatusOr<UNetConfig> UNetConfigFromJson(const JsonValue& json);

class UNet {
 public:
  // Weights drawn by InitWeights(seed) (nn_blocks.h) on CPU, residual outputs zeroed, then moved to
  // `device`. TORCH_CHECKs the config.
  UNet(const UNetConfig& config, uint64_t seed, const at::Device& device = at::kCPU);
  ~UNet();
  UNet(UNet&&) noexcept;
  UNet& operator=(UNet&&) noexcept;

  // ε̂ [B,C,H,W] for x [B,C,H,W] (C = image_channels, H = W = image_size), timesteps t [B] (int64 or
  // float), context [B or 1, L, context_dim], camera elevation and azimuth [B] (radians). Everything
  // must be on the module's device. Differentiable w.r.t. x, context and (when they require grad) the
  // weights.
  at::Tensor Forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& context, const at::Tensor& elevation,
                     const at::Tensor& azimuth) const;

  // The module, for optimizers, module_io and registering as a submodule.
  std::shared_ptr<torch::nn::Module> module() const;
  const UNetConfig& config() const { return config_; }
  int64_t NumParameters() const;

 private:
  struct Impl;
  UNetConfig config_;
  std::shared_ptr<Impl> impl_;
};

// Sinusoidal features [B, dim] of timesteps t [B] (cos half, then sin half; periods from 2π to
// 2π·10000, as in "Attention is all you need" / DDPM).
at::Tensor TimestepFeatures(const at::Tensor& t, int64_t dim);

}  // namespace psd3d::tinyworld
