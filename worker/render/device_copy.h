// Host→device copies that do not make the host wait for the GPU.
//
// A plain `cpu_tensor.to(cuda)` synchronizes the stream (LibTorch copies pageable memory and then waits
// for the copy), so every CPU-drawn random number (noise, jitter, cameras) in a training step would drain
// the GPU's queue and serialize the host's and the GPU's work. Staging through pinned memory lets the
// copy be queued like a kernel; LibTorch's pinned allocator keeps the staging block alive until the copy
// has run, so the source may be dropped at once.
#pragma once

#include <ATen/ATen.h>

namespace psd3d {

// `t` on `device` (and `dtype`, when given); for a CPU tensor going to CUDA, a queued copy from pinned
// memory. Otherwise the same as t.to(device, dtype).
at::Tensor ToDeviceAsync(const at::Tensor& t, const at::Device& device,
                         at::ScalarType dtype = at::ScalarType::Undefined);

}  // namespace psd3d
