// The forward (noising) process of a DDPM: ᾱ_t for each training timestep, and the ops on it that
// training, sampling and score distillation share.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace psd3d {

struct NoiseSchedule {
  at::Tensor alphas_cumprod;  // [T] float32 on CPU: ᾱ_t, decreasing, in (0,1)

  int64_t num_steps() const { return alphas_cumprod.size(0); }

  // DDPM's linear β schedule (Ho et al.: 1000 steps, β from 1e-4 to 0.02).
  static NoiseSchedule Linear(int64_t steps = 1000, double beta_start = 1e-4, double beta_end = 0.02);
  // Stable Diffusion's "scaled linear" schedule (β linear in √β), for production packs.
  static NoiseSchedule ScaledLinear(int64_t steps = 1000, double beta_start = 0.00085, double beta_end = 0.012);

  // ᾱ at timesteps t [B] (int64, any device) → [B] float32 on t's device.
  at::Tensor AlphaBar(const at::Tensor& t) const;
  // ᾱ_t for one timestep, read on the host.
  float AlphaBarAt(int64_t t) const;
  // x_t = √ᾱ x_0 + √(1−ᾱ) ε for x_0, ε [B,...] and t [B].
  at::Tensor AddNoise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;
  // x̂_0 = (x_t − √(1−ᾱ) ε̂) / √ᾱ: the clean latent a noise prediction implies.
  at::Tensor PredictX0(const at::Tensor& x_t, const at::Tensor& eps, const at::Tensor& t) const;
  // The same two for one timestep t shared by the batch. ᾱ_t is read on the host, so no schedule tensor
  // is copied to the latents' device (such a copy makes the host wait for the GPU); same float32 math.
  at::Tensor AddNoise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const;
  at::Tensor PredictX0(const at::Tensor& x_t, const at::Tensor& eps, int64_t t) const;
  // [√ᾱ_t, √(1−ᾱ_t)] as a float32 [2] tensor on the CPU, and x̂_0 from such a tensor (on x_t's device),
  // for work that must take t as data (a CUDA graph). On the CPU the same bits as PredictX0(x_t, eps, t);
  // on CUDA within rounding (a host scalar divisor is applied there as a multiply by its reciprocal).
  at::Tensor RootsAt(int64_t t) const;
  static at::Tensor PredictX0FromRoots(const at::Tensor& x_t, const at::Tensor& eps, const at::Tensor& roots);
};

}  // namespace psd3d
