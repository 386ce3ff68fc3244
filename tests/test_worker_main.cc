// psd3d-test-worker: the real worker runtime with the deterministic TestEngine, for service tests and
// the service demo until a production engine exists. Never deployed.
#include "tests/test_engine.h"
#include "worker/worker_main.h"

int main(int argc, char** argv) {
  return psd3d::RunWorkerMain(
      argc, argv, "psd3d-test-worker: the psd3d worker runtime with the deterministic test engine.", "test",
      [](const std::string& name) -> absl::StatusOr<std::unique_ptr<psd3d::Engine>> {
        if (name != "test") return absl::InvalidArgumentError("psd3d-test-worker only has the 'test' engine");
        return std::unique_ptr<psd3d::Engine>(new psd3d::testing::TestEngine());
      });
}
