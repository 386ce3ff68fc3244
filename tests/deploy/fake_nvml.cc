// A stand-in for libnvidia-ml.so.1 with two GPUs (1 GiB and 2 GiB used of 80 GiB), so the worker's
// NVML path (dlopen, symbols, scrape-time reads) runs in tests on machines without NVIDIA drivers.
extern "C" {

struct FakeNvmlMemory {
  unsigned long long total, free, used;
};

static int g_initialized = 0;
static int g_devices[2] = {0, 1};

int nvmlInit_v2() {
  ++g_initialized;
  return 0;
}
int nvmlShutdown() {
  --g_initialized;
  return 0;
}
int nvmlDeviceGetCount_v2(unsigned* count) {
  if (g_initialized <= 0) return 1;  // NVML_ERROR_UNINITIALIZED
  *count = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
  if (g_initialized <= 0 || index >= 2) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = &g_devices[index];
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* device, FakeNvmlMemory* memory) {
  const int index = *static_cast<int*>(device);
  const unsigned long long gib = 1ULL << 30;
  memory->total = 80 * gib;
  memory->used = (index + 1) * gib;
  memory->free = memory->total - memory->used;
  return 0;
}

}  // extern "C"
