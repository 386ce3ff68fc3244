# The engine's dependencies: LibTorch (Debian's 1.13 CPU build, or the GPU machine's 2.11 with CUDA),
# libpng, and CUDA kernels when Torch was built with CUDA. Sets PSD3D_WITH_CUDA.
find_package(Torch REQUIRED)
find_package(PNG REQUIRED)

set(PSD3D_WITH_CUDA OFF)
if(NOT PSD3D_CUDA STREQUAL "OFF")
  # Caffe2Config sets CAFFE2_USE_CUDA for CUDA builds of Torch; Debian's CPU build leaves it off.
  if(CAFFE2_USE_CUDA OR TARGET torch_cuda)
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
      if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
        set(CMAKE_CUDA_ARCHITECTURES 90)  # H100/H200
      endif()
      enable_language(CUDA)
      set(CMAKE_CUDA_STANDARD 17)
      set(CMAKE_CUDA_STANDARD_REQUIRED ON)
      set(PSD3D_WITH_CUDA ON)
    endif()
  endif()
  if(PSD3D_CUDA STREQUAL "ON" AND NOT PSD3D_WITH_CUDA)
    message(FATAL_ERROR "PSD3D_CUDA=ON but Torch has no CUDA or nvcc was not found")
  endif()
endif()
message(STATUS "psd3d engine: Torch ${Torch_VERSION}, CUDA kernels ${PSD3D_WITH_CUDA}")
