#include "worker/pipeline/cpu_threads.h"

#include <cstdlib>
#include <thread>

#include <ATen/Parallel.h>

namespace psd3d {

int UseAllCpuCores() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  const unsigned cores = std::thread::hardware_concurrency();
  if ((env == nullptr || *env == '\0') && cores > 0 && at::get_num_threads() != static_cast<int>(cores))
    at::set_num_threads(static_cast<int>(cores));
  return at::get_num_threads();
}

}  // namespace psd3d
