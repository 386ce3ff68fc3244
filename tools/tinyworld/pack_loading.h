// Loading a pack's optional parts for the psd3d-tinyworld tools that score samples (eval-prior,
// judge): a reward model the pack lacks is a note, not an error, so the rest of the report still comes.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "worker/tinyworld/tiny_reward.h"

namespace psd3d::tinyworld {

// The reward model `key` ("reward" or "reward_eval") of the pack in `pack_dir` on `device`, or null
// with "<label>: no <key> scores: <why>" on stderr when it cannot be loaded.
std::unique_ptr<TinyReward> LoadOptionalReward(const std::string& pack_dir, const std::string& key,
                                               const at::Device& device, const std::string& label);

}  // namespace psd3d::tinyworld
