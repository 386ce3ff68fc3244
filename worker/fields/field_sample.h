// What a radiance field returns for a batch of points; shared by fields and the volume renderer.
#pragma once

#include <ATen/ATen.h>

namespace psd3d {

struct FieldSample {
  at::Tensor density;  // [...] ≥ 0
  at::Tensor albedo;   // [...,3] in [0,1]
};

}  // namespace psd3d
