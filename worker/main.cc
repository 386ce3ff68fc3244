// psd3d-worker: pulls jobs from the queue and runs them on this machine's engine.
#include "absl/strings/str_cat.h"
#include "worker/worker_main.h"

namespace {

constexpr char kUsage[] =
    "psd3d-worker: runs text-to-3D jobs from the psd3d queue.\n"
    "  psd3d-worker --redis=127.0.0.1:6379 [--metrics_address=0.0.0.0:9465]\n"
    "SIGTERM stops claiming, checkpoints the running job, releases its lease and exits.";

absl::StatusOr<std::unique_ptr<psd3d::Engine>> MakeEngine(const std::string& name) {
  // Engines register here as they land; the PSD engine (issue 5) becomes the default.
  return absl::UnimplementedError(absl::StrCat(
      "engine '", name, "' is not built into this binary; this build has no production engine yet "
      "(the PSD engine lands with the engine issues). Tests run tests/psd3d-test-worker instead."));
}

}  // namespace

int main(int argc, char** argv) { return psd3d::RunWorkerMain(argc, argv, kUsage, "psd", MakeEngine); }
