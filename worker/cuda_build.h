// Whether this build carries the engine's CUDA code: PSD3D_WITH_CUDA, set by cmake/Engine.cmake when
// Torch has CUDA and nvcc is found. The one place that reads the macro for run-time answers.
#pragma once

namespace psd3d {

#ifdef PSD3D_WITH_CUDA
inline constexpr bool kBuiltWithCuda = true;
#else
inline constexpr bool kBuiltWithCuda = false;
#endif

}  // namespace psd3d
