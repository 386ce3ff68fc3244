// Sampling a DiffusionPrior: deterministic DDIM (η = 0) or stochastic (η > 0) over a strided subset of
// the training timesteps, with classifier-free guidance ε = ε_u + s·(ε_c − ε_u), both branches in one
// batched PredictNoise call. Used for the prior's quality check and the docs' sample grids.
#pragma once

#include <ATen/ATen.h>

#include "worker/models/diffusion_prior.h"

namespace psd3d {

struct DdimOptions {
  int64_t steps = 50;           // sampling steps (≤ the schedule's length)
  double guidance_scale = 5.0;  // 1: no guidance (the conditional branch alone)
  double eta = 0.0;             // 0: deterministic DDIM
};

// Images [B,3,H,W] in [0,1] for `context` [B,L,D] (or [1,L,D]) seen from `cameras` (size B), starting
// from noise drawn from `generator` (CPU generator; deterministic for a given state). No gradients.
at::Tensor SampleDdim(DiffusionPrior& prior, const at::Tensor& context, const CameraBatch& cameras,
                      const DdimOptions& options, at::Generator& generator);

}  // namespace psd3d
