#include "worker/render/device_copy.h"

namespace psd3d {

at::Tensor ToDeviceAsync(const at::Tensor& t, const at::Device& device, at::ScalarType dtype) {
  const at::ScalarType type = dtype == at::ScalarType::Undefined ? t.scalar_type() : dtype;
  if (!(t.device().is_cpu() && device.is_cuda())) return t.to(device, type);
  // Convert on the host first, so that only the final bytes cross the bus.
  return t.to(type).pin_memory().to(device, type, /*non_blocking=*/true);
}

}  // namespace psd3d
