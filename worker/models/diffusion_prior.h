// The 2D diffusion model that guides PSD (docs/psd-method.md): a frozen, text- and camera-conditioned
// noise predictor. The tiny pack (worker/tinyworld/tiny_prior.h) and production packs (Stable
// Diffusion, MVDream) implement this one interface, so the engine never knows which it talks to.
//
// Conventions: images are [B,3,H,W] float32 sRGB in [0,1] on a white background at image_size()²;
// latents are what the noise lives on ([B,C,h,w]: the images scaled to [−1,1] for pixel-space priors,
// a VAE's latents otherwise); timesteps are int64 in [0, schedule().num_steps()).
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "worker/models/noise_schedule.h"
#include "worker/render/cameras.h"

namespace psd3d {

class DiffusionPrior {
 public:
  virtual ~DiffusionPrior() = default;

  // For logs and manifests, e.g. "tiny-prior@models/tiny".
  virtual std::string name() const = 0;
  virtual at::Device device() const = 0;
  // Side of the square images the prior was trained on; renders are made at this size.
  virtual int64_t image_size() const = 0;
  virtual const NoiseSchedule& schedule() const = 0;

  // Text → context [1,L,D] (what cross-attention reads). INVALID_ARGUMENT for prompts the model cannot
  // read, naming the word or reason.
  virtual absl::StatusOr<at::Tensor> EncodePrompt(const std::string& prompt) = 0;
  // The context of the empty prompt: the unconditional branch of classifier-free guidance, and where
  // PSD's learnable negative embedding ψ starts.
  virtual at::Tensor EmptyContext() = 0;

  // images → latents and back; both differentiable (PSD back-propagates through Encode).
  virtual at::Tensor Encode(const at::Tensor& images) = 0;
  virtual at::Tensor Decode(const at::Tensor& latents) = 0;

  // ε̂(x_t, t, context, camera): x_t [B,C,h,w], t [B] int64, context [B,L,D] (or [1,L,D], shared),
  // cameras of size B (the view each x_t was rendered from; priors without camera conditioning ignore
  // them). Differentiable w.r.t. x_t and context (PSD learns ψ through it); the weights stay frozen.
  virtual at::Tensor PredictNoise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& context,
                                  const CameraBatch& cameras) = 0;
};

}  // namespace psd3d
