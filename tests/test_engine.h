// A deterministic engine for service tests (never shipped): it "optimizes" a counter through the three
// stages, emits progress, previews, checkpoints and a small valid GLB. Behaviour is steered by
// key=value words in the prompt:
//   steps=N      steps per stage (default 20; a spec stage override wins)
//   step_ms=N    sleep per step (default 5)
//   ckpt_every=N checkpoint every N steps (default 0: stage boundaries and CheckpointDue only)
//   fail=always|invalid|once   injected failure (retryable / permanent / first attempt only)
//   fail_at=N    global step at which the failure happens (default 3)
#pragma once

#include <string>

#include "worker/engine.h"

namespace psd3d::testing {

class TestEngine : public Engine {
 public:
  std::string name() const override { return "test"; }
  absl::Status Run(JobContext& ctx, const std::string* checkpoint) override;
};

// A minimal valid glTF 2.0 binary: one triangle, positions with min/max, indices.
std::string TinyGlb(float scale);
// A valid 1×1 PNG.
std::string TinyPng();

}  // namespace psd3d::testing
