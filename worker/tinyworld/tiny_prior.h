// The tiny world's diffusion prior (docs/tiny-world.md): a pixel-space DDPM (ε-prediction, DDPM's
// linear 1000-step schedule) whose UNet (unet.h) reads a small text encoder's context (text_encoder.h)
// through cross-attention and the camera through its time embedding. The stand-in for SD / MVDream
// behind the DiffusionPrior interface.
//
// Latents are the pixels themselves: x = 2·image − 1 ([B,3,64,64] in [−1,1]); Decode is the inverse
// (not clamped, so gradients pass). Packs store the weights in "prior.safetensors" (parameter names
// "text.…" and "unet.…") and models["prior"] of manifest.json:
//   {"weights": "prior.safetensors", "architecture": {"text_encoder": {…}, "unet": {…}},
//    "vocabulary": [words after the special tokens], "max_length": L,
//    "schedule": {"type": "linear", "steps": 1000, "beta_start": 1e-4, "beta_end": 0.02},
//    "latents": "pixels", "prediction": "epsilon", "image_size": 64, "training": {…}, "metrics": {…}}
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/formats/json_lite.h"
#include "worker/models/diffusion_prior.h"
#include "worker/tinyworld/text_encoder.h"
#include "worker/tinyworld/tokenizer.h"
#include "worker/tinyworld/unet.h"

namespace psd3d::tinyworld {

inline constexpr char kPriorKey[] = "prior";
inline constexpr char kPriorWeightsFile[] = "prior.safetensors";

struct TinyPriorConfig {
  // vocab_size and max_length are taken from the tokenizer by Create; context_dim of the UNet must
  // equal the text encoder's dim (Create sets it).
  TextEncoderConfig text;
  UNetConfig unet;
};
JsonValue TinyPriorConfigToJson(const TinyPriorConfig& config);  // {"text_encoder": …, "unet": …}
absl::StatusOr<TinyPriorConfig> TinyPriorConfigFromJson(const JsonValue& architecture);

class TinyPrior : public DiffusionPrior {
 public:
  // A fresh, trainable prior for the tiny world's tokenizer (weights from `seed`). INVALID_ARGUMENT for a
  // bad config.
  static absl::StatusOr<std::unique_ptr<TinyPrior>> Create(const TinyPriorConfig& config, const at::Device& device,
                                                           uint64_t seed = 0);
  // The prior of a pack (manifest models["prior"]), frozen (no parameter requires grad). NOT_FOUND
  // without a manifest or entry; INVALID_ARGUMENT for an entry or weights file that does not match.
  static absl::StatusOr<std::unique_ptr<TinyPrior>> Load(const std::string& pack_dir, const at::Device& device);
  ~TinyPrior() override;

  // DiffusionPrior.
  std::string name() const override { return name_; }
  at::Device device() const override { return device_; }
  int64_t image_size() const override { return config_.unet.image_size; }
  const NoiseSchedule& schedule() const override { return schedule_; }
  // The context of one prompt, [1,L,D], computed without gradients. Unknown words are INVALID_ARGUMENT
  // naming the word (the tokenizer's message).
  absl::StatusOr<at::Tensor> EncodePrompt(const std::string& prompt) override;
  at::Tensor EmptyContext() override;
  at::Tensor Encode(const at::Tensor& images) override { return images * 2.0 - 1.0; }
  at::Tensor Decode(const at::Tensor& latents) override { return (latents + 1.0) * 0.5; }
  // context [B or 1, L, D] (a batch of 1 is shared). Differentiable w.r.t. x_t and context, and w.r.t.
  // the weights of a trainable prior.
  at::Tensor PredictNoise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& context,
                          const CameraBatch& cameras) override;

  // For training: the context of token ids [B,L] with gradients to the text encoder.
  at::Tensor EncodeIds(const at::Tensor& ids) const;
  // The root module (submodules "text" and "unet"): parameters for the optimizer, tensors for
  // module_io. Shared with this prior; do not change the architecture through it.
  torch::nn::Module& module() const;
  // requires_grad of every parameter.
  void SetTrainable(bool trainable);

  // Writes the weights to pack_dir/prior.safetensors (floats as `dtype`; F16 keeps packs small) and the
  // manifest entry models["prior"] with the given training and metrics objects.
  absl::Status Save(const std::string& pack_dir, const JsonValue& training, const JsonValue& metrics,
                    at::ScalarType dtype = at::kHalf) const;

  const TinyPriorConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  int64_t NumParameters() const;

 private:
  struct Modules;
  TinyPrior(const TinyPriorConfig& config, Tokenizer tokenizer, const at::Device& device, uint64_t seed,
            std::string name);
  // The manifest entry without training and metrics.
  JsonValue ManifestEntry() const;

  TinyPriorConfig config_;
  Tokenizer tokenizer_;
  at::Device device_;
  std::string name_;
  NoiseSchedule schedule_;
  std::shared_ptr<Modules> modules_;
};

}  // namespace psd3d::tinyworld
