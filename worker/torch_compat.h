// The one place where LibTorch 1.13 (Debian, CPU, CI) and 2.x (GPU machine) differ for psd3d.
// Everything else uses only APIs present in both: data_ptr<T>(), scalar_type(), options().
#pragma once

#include <torch/version.h>

#include <optional>

#define PSD3D_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if !PSD3D_TORCH_AT_LEAST(2, 1)
#include <c10/util/Optional.h>
#endif

namespace psd3d {

// c10::optional is its own type in 1.13; 2.x uses std::optional (c10::optional is a deprecated alias).
#if PSD3D_TORCH_AT_LEAST(2, 1)
template <typename T>
using TorchOptional = std::optional<T>;
#else
template <typename T>
using TorchOptional = c10::optional<T>;
#endif

}  // namespace psd3d
