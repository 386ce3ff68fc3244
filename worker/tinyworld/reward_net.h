// The tiny reward's network: a small CNN over 64×64 images whose features are modulated (FiLM) by the
// prompt, read by its own bag-of-embeddings text encoder over Tokenizer ids; a scalar score per image.
// Parameters: 835 k at width 32, 503 k at 24, 255 k at 16.
//
// Why this shape: the degradations it must see are local (blur, noise, floaters), global color
// statistics (wrong, washed-out, over-saturated color) and framing (off-center, cropped). Five stages
// (64² down to 4², stride-2 convolutions between them) cover all three scales; two coordinate channels
// on the input and a spatially resolved head (a flattened 4×4 map) keep position information that
// global pooling would lose; FiLM on every convolution lets the prompt's color and shape steer features
// from the first layer on, so "is this the prompt's color" is a per-pixel question. The head also
// reads global statistics of the object's pixels (mean color in CIELAB, spread, area, centroid): a
// low-frequency path whose image gradient is the same on every object pixel, so following the reward's
// gradient changes the object's color rather than only painting high-frequency patterns (PSD's reward
// guidance follows it). No normalization layers: absolute brightness and saturation are part of what is
// judged. Smooth activations (SiLU) and strided convolutions (no max-pooling) keep gradients smooth.
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

struct RewardNetConfig {
  int64_t vocab_size = 0;  // ids the text encoder reads (Tokenizer::vocab_size())
  int64_t max_length = 10;
  int64_t width = 32;      // channels of the first stage; the five stages have w, 2w, 2w, 4w, 4w
  int64_t text_dim = 64;   // text embedding size
  int64_t image_size = 64; // side of the images Score reads; a multiple of 16

  absl::Status Validate() const;
  // {"type": "tiny-reward-cnn/1", "vocab_size": …, …}: the manifest's "architecture".
  JsonValue ToJson() const;
  // INVALID_ARGUMENT naming the missing or bad field, or a foreign "type".
  static absl::StatusOr<RewardNetConfig> FromJson(const JsonValue& json);
};

class RewardNet {
 public:
  // A freshly initialized network on the CPU; the initialization depends only on `seed`.
  RewardNet(const RewardNetConfig& config, uint64_t seed);
  ~RewardNet();
  RewardNet(RewardNet&&) noexcept;
  RewardNet& operator=(RewardNet&&) noexcept;

  const RewardNetConfig& config() const;
  // The torch::nn module (parameters by dotted name, for module_io and optimizers).
  torch::nn::Module& module();
  const torch::nn::Module& module() const;
  std::vector<at::Tensor> parameters() const;
  int64_t num_parameters() const;

  void to(const at::Device& device);
  at::Device device() const;
  // Stops gradients to the weights (loaded, frozen models); image gradients still flow.
  void Freeze();

  // Token ids [B,L] int64 → prompt embeddings [B,text_dim].
  at::Tensor EncodeText(const at::Tensor& ids) const;
  // Scores [B] of images [B,3,S,S] (S = image_size, sRGB in [0,1]) under prompt embeddings [B,D] or
  // [1,D] (shared). Differentiable w.r.t. images, embeddings and (unless frozen) weights.
  at::Tensor Score(const at::Tensor& images, const at::Tensor& text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psd3d::tinyworld
