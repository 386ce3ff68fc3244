// A learned human-preference score (ImageReward / HPSv2 in production, the tiny world's Bradley-Terry
// reward in the embedded pack): PSD's preference signal and the evaluation's reward-hacking check.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"

namespace psd3d {

class RewardModel {
 public:
  virtual ~RewardModel() = default;

  virtual std::string name() const = 0;
  virtual at::Device device() const = 0;
  // The image side the model reads; Score resizes other sizes to it (bilinear, differentiable).
  virtual int64_t image_size() const = 0;

  // The prompt in the model's own form, computed once per job. INVALID_ARGUMENT for prompts the model
  // cannot read.
  virtual absl::StatusOr<at::Tensor> EncodePrompt(const std::string& prompt) = 0;
  // Scores [B] for images [B,3,H,W] (float32 sRGB in [0,1], white background) of the encoded prompt:
  // higher is preferred; only differences matter. Differentiable w.r.t. the images.
  virtual at::Tensor Score(const at::Tensor& images, const at::Tensor& prompt) = 0;
};

}  // namespace psd3d
