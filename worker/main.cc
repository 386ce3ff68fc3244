// psd3d-worker: pulls jobs from the queue and runs them on this machine's engine.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "worker/worker_main.h"

#ifdef PSD3D_WITH_PSD_ENGINE
#include "worker/psd_engine.h"
#include "worker/pipeline/cpu_threads.h"
#include "worker/pipeline/job_run.h"

ABSL_FLAG(std::string, packs, "",
          "Model packs this worker serves, as name=directory,... (default: tiny=<the embedded tiny pack>, "
          "i.e. $PSD3D_PACK_DIR or the source tree's models/tiny)");
ABSL_FLAG(std::string, device, "auto", "Where jobs run: cpu, cuda, or auto (CUDA when available)");
ABSL_FLAG(std::vector<std::string>, set, {},
          "Expert knobs applied to every job on top of its preset, given once as a comma list, e.g. "
          "--set=coarse.guidance_scale=20,geometry.views=2 (keys: worker/pipeline/presets.h SetConfigValue)");
ABSL_FLAG(int, preview_size, 128, "Pixels per view of the 2x2 preview grid sent every preview interval");
#endif

namespace {

constexpr char kUsage[] =
    "psd3d-worker: runs text-to-3D jobs from the psd3d queue on the PSD engine.\n"
    "  psd3d-worker --redis=127.0.0.1:6379 [--device=auto] [--packs=tiny=models/tiny]\n"
    "             [--metrics_address=0.0.0.0:9465]\n"
    "DRAFT jobs (the default quality) run on CPU in minutes; STANDARD and HIGH want --device=cuda.\n"
    "SIGTERM stops claiming, checkpoints the running job, releases its lease and exits.";

absl::StatusOr<std::unique_ptr<psd3d::Engine>> MakeEngine(const std::string& name) {
#ifdef PSD3D_WITH_PSD_ENGINE
  if (name == "psd") {
    psd3d::PsdEngineOptions o;
    const std::string packs = absl::GetFlag(FLAGS_packs);
    if (packs.empty()) {
      o.packs["tiny"] = psd3d::DefaultTinyPackDir();
    } else {
      absl::StatusOr<std::map<std::string, std::string>> list = psd3d::ParsePackList(packs);
      if (!list.ok()) return list.status();
      o.packs = *list;
    }
    o.device = absl::GetFlag(FLAGS_device);
    psd3d::UseAllCpuCores();
    o.preview_size = absl::GetFlag(FLAGS_preview_size);
    o.settings = absl::GetFlag(FLAGS_set);
    absl::StatusOr<std::unique_ptr<psd3d::PsdEngine>> engine = psd3d::PsdEngine::Create(o);
    if (!engine.ok()) return engine.status();
    return std::unique_ptr<psd3d::Engine>(std::move(*engine));
  }
#endif
  return absl::InvalidArgumentError(absl::StrCat(
      "engine '", name, "' is not built into this binary (available: ",
#ifdef PSD3D_WITH_PSD_ENGINE
      "psd",
#else
      "none; build with the LibTorch engine",
#endif
      "). Tests run tests/psd3d-test-worker for the deterministic test engine."));
}

}  // namespace

int main(int argc, char** argv) {
  // Abseil keeps only the last of repeated flags, which would drop earlier --set knobs without a word.
  int sets = 0;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    sets += arg == "--set" || arg == "-set" || absl::StartsWith(arg, "--set=") || absl::StartsWith(arg, "-set=");
  }
  if (sets > 1) {
    std::fprintf(stderr, "psd3d-worker: give --set once, as a comma list: --set=coarse.steps=100,geometry.views=2\n");
    return 2;
  }
  return psd3d::RunWorkerMain(argc, argv, kUsage, "psd", MakeEngine);
}
