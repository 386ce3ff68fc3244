// A gtest fixture base that loads the shipped tiny pack's prior and training reward on CPU once per
// test suite (each load reads the safetensors and builds the networks).
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/tiny_prior.h"
#include "worker/tinyworld/tiny_reward.h"

namespace psd3d {

class TinyPackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prior_ = *tinyworld::TinyPrior::Load(tinyworld::DefaultPackDir(), at::kCPU);
    reward_ = *tinyworld::TinyReward::Load(tinyworld::DefaultPackDir(), "reward", at::kCPU);
  }
  static void TearDownTestSuite() {
    prior_.reset();
    reward_.reset();
  }
  static inline std::unique_ptr<tinyworld::TinyPrior> prior_;
  static inline std::unique_ptr<tinyworld::TinyReward> reward_;
};

}  // namespace psd3d
