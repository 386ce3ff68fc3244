#include "tools/tinyworld/pack_loading.h"

#include <cstdio>

namespace psd3d::tinyworld {

std::unique_ptr<TinyReward> LoadOptionalReward(const std::string& pack_dir, const std::string& key,
                                               const at::Device& device, const std::string& label) {
  absl::StatusOr<std::unique_ptr<TinyReward>> r = TinyReward::Load(pack_dir, key, device);
  if (r.ok()) return *std::move(r);
  std::fprintf(stderr, "%s: no %s scores: %s\n", label.c_str(), key.c_str(), std::string(r.status().message()).c_str());
  return nullptr;
}

}  // namespace psd3d::tinyworld
