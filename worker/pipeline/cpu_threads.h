// LibTorch's CPU thread pool, sized for optimization jobs.
#pragma once

namespace psd3d {

// Sizes LibTorch's intra-op pool to every core (std::thread::hardware_concurrency) unless
// OMP_NUM_THREADS is set, and returns the size in use. Debian's LibTorch starts with one thread, which
// leaves half of a 2-core CI machine idle during a job. Idempotent; called by the mains that run jobs
// (psd3d-worker, psd3d generate, psd3d-eval, psd3d-tinyworld, psd3d-pipeline-bench), not by tests,
// which ctest already runs side by side.
int UseAllCpuCores();

}  // namespace psd3d
