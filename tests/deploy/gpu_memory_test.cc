// worker/gpu_memory: NVML loaded at run time (here the fake in fake_nvml.cc), read at scrape time.
#include "worker/gpu_memory.h"

#include <gtest/gtest.h>

namespace psd3d {
namespace {

TEST(GpuMemoryCollector, ReadsEveryGpuFromNvml) {
  std::string why;
  auto collector = GpuMemoryCollector::Load(PSD3D_FAKE_NVML, &why);
  ASSERT_NE(collector, nullptr) << why;
  const auto families = collector->Collect();
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].name, "psd3d_worker_gpu_memory_used_bytes");
  EXPECT_EQ(families[1].name, "psd3d_worker_gpu_memory_total_bytes");
  ASSERT_EQ(families[0].metric.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(families[0].metric[i].label.at(0).name, "gpu");
    EXPECT_EQ(families[0].metric[i].label.at(0).value, std::to_string(i));
    EXPECT_EQ(families[0].metric[i].gauge.value, (i + 1) * double(1ULL << 30));
    EXPECT_EQ(families[1].metric[i].gauge.value, 80 * double(1ULL << 30));
  }
}

TEST(GpuMemoryCollector, NoLibraryMeansNoCollector) {
  std::string why;
  EXPECT_EQ(GpuMemoryCollector::Load("libpsd3d-no-such-nvml.so.1", &why), nullptr);
  EXPECT_NE(why.find("libpsd3d-no-such-nvml"), std::string::npos) << why;
}

TEST(GpuMemoryCollector, LibraryWithoutNvmlIsRejected) {
  std::string why;
  EXPECT_EQ(GpuMemoryCollector::Load("libm.so.6", &why), nullptr);
  EXPECT_NE(why.find("lacks an NVML function"), std::string::npos) << why;
}

}  // namespace
}  // namespace psd3d
