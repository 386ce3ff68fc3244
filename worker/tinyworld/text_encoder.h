// The tiny prior's text encoder: Tokenizer ids → a context sequence [B,L,D] that the UNet's
// cross-attention reads (the space PSD's learnable negative embedding ψ lives in).
//
//   h = token_embedding[ids] + positions                  learned, [B,L,D]
//   h = h + SelfAttention(LayerNorm(h))                   × layers (pre-norm transformer,
//   h = h + Linear(GELU(Linear(LayerNorm(h))))              bidirectional, no padding mask)
//   context = LayerNorm(h)
//
// No padding mask on purpose: like CLIP's text tower in Stable Diffusion, every position (pads included)
// carries a summary of the prompt, and the UNet attends to all L positions, so ψ has the same shape as
// any prompt's context.
//
// The torch::nn module lives behind a pointer (pimpl) so this header needs only ATen. Its building
// blocks (InitWeights, MultiHeadAttention) live in nn_blocks.h, shared with the UNet.
#pragma once

#include <cstdint>
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/formats/json_lite.h"

namespace torch::nn {
class Module;
}

namespace psd3d::tinyworld {

struct TextEncoderConfig {
  int64_t vocab_size = 0;   // Tokenizer::vocab_size() (special tokens included)
  int64_t max_length = 10;  // Tokenizer::max_length(): the context length L
  int64_t dim = 128;        // D: width of the context
  int64_t layers = 2;
  int64_t heads = 4;      // dim must be a multiple of heads
  int64_t mlp_dim = 256;  // hidden width of each layer's MLP
};

// OK, or INVALID_ARGUMENT naming the bad field.
absl::Status ValidateTextEncoderConfig(const TextEncoderConfig& config);
// {"vocab_size":…, "max_length":…, "dim":…, "layers":…, "heads":…, "mlp_dim":…} and back (a manifest's
// architecture); FromJson validates and names missing or bad keys.
JsonValue TextEncoderConfigToJson(const TextEncoderConfig& config);
absl::StatusOr<TextEncoderConfig> TextEncoderConfigFromJson(const JsonValue& json);

class TextEncoder {
 public:
  // Weights drawn by InitWeights(seed) on CPU, then moved to `device`. TORCH_CHECKs the config.
  TextEncoder(const TextEncoderConfig& config, uint64_t seed, const at::Device& device = at::kCPU);
  ~TextEncoder();
  TextEncoder(TextEncoder&&) noexcept;
  TextEncoder& operator=(TextEncoder&&) noexcept;

  // ids [B, max_length] int64 (any device; moved to the module's) → context [B, L, D] float32.
  // Differentiable w.r.t. the weights when they require grad.
  at::Tensor Forward(const at::Tensor& ids) const;

  // The module, for optimizers, module_io and registering as a submodule. Parameter names:
  // "token_embedding.weight", "positions", "layers.<i>.…", "final_norm.…".
  std::shared_ptr<torch::nn::Module> module() const;
  const TextEncoderConfig& config() const { return config_; }

 private:
  struct Impl;
  TextEncoderConfig config_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace psd3d::tinyworld
