// Module weights round-trip through safetensors, and pack manifests keep each model's entry.
#include <gtest/gtest.h>

#include <filesystem>

#include <torch/nn/modules/linear.h>

#include "worker/formats/safetensors.h"
#include "worker/tinyworld/module_io.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::tinyworld {
namespace {

std::string TempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("psd3d_pack_" + name + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

TEST(ModuleIo, RoundTripThroughSafetensors) {
  torch::nn::Linear a(4, 3), b(4, 3);
  const std::string dir = TempDir("io");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteSafetensors(dir + "/w.safetensors", WithPrefix("lin", ModuleTensors(*a))).ok());
  auto file = ReadSafetensors(dir + "/w.safetensors");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(LoadModuleTensors(*b, file->tensors, "lin").ok());
  EXPECT_TRUE(at::equal(a->weight, b->weight));
  EXPECT_TRUE(at::equal(a->bias, b->bias));
  // F16 storage keeps values to half precision.
  EXPECT_EQ(ModuleTensors(*a, at::kHalf).at("weight").scalar_type(), at::kHalf);
  std::filesystem::remove_all(dir);
}

TEST(ModuleIo, MismatchesAreNamed) {
  torch::nn::Linear a(4, 3), wide(5, 3);
  auto tensors = ModuleTensors(*wide);
  absl::Status s = LoadModuleTensors(*a, tensors);
  EXPECT_NE(std::string(s.message()).find("'weight' has shape [3, 5]"), std::string::npos) << s;
  tensors = ModuleTensors(*a);
  tensors.erase("bias");
  s = LoadModuleTensors(*a, tensors);
  EXPECT_NE(std::string(s.message()).find("'bias' is missing"), std::string::npos) << s;
  tensors = ModuleTensors(*a);
  tensors["extra"] = at::zeros({1});
  EXPECT_NE(std::string(LoadModuleTensors(*a, tensors).message()).find("unexpected tensor 'extra'"), std::string::npos);
}

TEST(Pack, ManifestEntriesAreReplacedOneByOne) {
  const std::string dir = TempDir("manifest");
  EXPECT_EQ(ReadManifest(dir).status().code(), absl::StatusCode::kNotFound);
  JsonValue prior = JsonValue::Object();
  prior.Set("weights", JsonValue::String("prior.safetensors"));
  prior.Set("steps", JsonValue::Int(10));
  ASSERT_TRUE(WriteModelEntry(dir, "prior", prior).ok());
  JsonValue reward = JsonValue::Object();
  reward.Set("weights", JsonValue::String("reward.safetensors"));
  ASSERT_TRUE(WriteModelEntry(dir, "reward", reward).ok());
  prior = JsonValue::Object();
  prior.Set("weights", JsonValue::String("prior.safetensors"));
  prior.Set("steps", JsonValue::Int(20));
  ASSERT_TRUE(WriteModelEntry(dir, "prior", prior).ok());
  auto p = ReadModelEntry(dir, "prior");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*JsonInt(*p, "steps"), 20);
  EXPECT_EQ(*JsonString(*ReadModelEntry(dir, "reward"), "weights"), "reward.safetensors");
  EXPECT_EQ(ReadModelEntry(dir, "judge").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(JsonInt(*p, "weights").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace psd3d::tinyworld
