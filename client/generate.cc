// `psd3d generate PROMPT`: the same PSD engine as psd3d-worker, run in this process on the local model
// pack, without Redis or a server. Progress bar on stderr, previews in a folder, the GLB at -o.
// Ctrl-C stops after the current step (with --checkpoint, after saving it: run again to resume).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/errors.h"
#include "client/names.h"
#include "client/progress_bar.h"
#include "common/file_io.h"
#include "common/validation.h"
#include "worker/local_job.h"
#include "worker/psd_engine.h"
#include "worker/pipeline/cpu_threads.h"
#include "worker/pipeline/job_run.h"

ABSL_FLAG(std::string, device, "auto", "generate: cpu, cuda, or auto (CUDA when available)");
ABSL_FLAG(std::string, pack_dir, "",
          "generate: directory of the model pack (default: $PSD3D_PACK_DIR, else the embedded tiny pack)");
ABSL_FLAG(std::vector<std::string>, set, {},
          "generate: expert knobs on top of the preset, e.g. --set=coarse.guidance_scale=20,geometry.resolution=32 "
          "(keys: worker/pipeline/presets.h SetConfigValue)");
ABSL_FLAG(std::string, checkpoint, "",
          "generate: checkpoint file; written at stage ends, every minute and on Ctrl-C, and resumed from when "
          "it exists");

namespace psd3d::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

// "a red cube" → "a_red_cube": a default file name from the prompt.
std::string Slug(const std::string& prompt) {
  std::string out;
  for (char c : prompt) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '_') out.push_back('_');
    if (out.size() >= 60) break;
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "mesh" : out;
}

}  // namespace

int Generate(const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("generate takes one PROMPT, quoted: psd3d generate \"a red cube\" -o red_cube.glb");
  auto req = BuildSubmitRequest(args[0]);
  if (!req.ok()) return UsageError(absl::StrCat("generate: ", req.status().message()));
  const std::string pack = req->spec().model_pack().empty() ? "tiny" : req->spec().model_pack();
  ValidationLimits limits;
  limits.model_packs = {pack};
  ApplySubmitDefaults(&*req, limits);  // seed, method, quality, pack
  const v1::JobSpec& spec = req->spec();

  UseAllCpuCores();
  PsdEngineOptions options;
  const std::string pack_dir = absl::GetFlag(FLAGS_pack_dir);
  options.packs[pack] = pack_dir.empty() ? DefaultTinyPackDir() : pack_dir;
  options.device = absl::GetFlag(FLAGS_device);
  options.settings = absl::GetFlag(FLAGS_set);
  auto engine = PsdEngine::Create(options);
  if (!engine.ok()) return UsageError(absl::StrCat("generate: ", engine.status().message()));

  LocalJobOptions job;
  job.spec = spec;
  job.output_glb = OutputFlag().empty() ? Slug(spec.prompt()) + ".glb" : OutputFlag();
  job.preview_dir = PreviewsDirFlag().empty() ? Slug(spec.prompt()) + "-previews" : PreviewsDirFlag();
  job.checkpoint_path = absl::GetFlag(FLAGS_checkpoint);
  job.shutdown = &g_interrupted;
  ProgressBar bar(std::cerr, isatty(2) != 0);
  job.on_progress = [&bar](const v1::JobEvent::Progress& p) { bar.Update(p); };
  job.on_log = [&bar](v1::JobEvent::Log::Level, const std::string& m) { bar.PrintLine(std::cerr, m); };
  std::error_code error;
  std::filesystem::create_directories(job.preview_dir, error);
  if (error) return Fail(kExitOther, absl::StrCat("cannot create ", job.preview_dir, ": ", error.message()));

  std::string checkpoint;
  bool resume = false;
  if (!job.checkpoint_path.empty()) {
    absl::StatusOr<std::string> bytes = ReadFileToString(job.checkpoint_path);
    if (bytes.ok()) checkpoint = *std::move(bytes), resume = true;
    else if (!absl::IsNotFound(bytes.status())) return Fail(kExitOther, bytes.status().message());
  }
  std::cerr << "generating \"" << spec.prompt() << "\": " << MethodName(spec.method()) << ", "
            << QualityName(spec.quality()) << ", seed " << spec.seed() << ", on " << (*engine)->device()
            << (resume ? ", resuming from " + job.checkpoint_path : "") << "\n";
  std::signal(SIGINT, OnInterrupt);
  LocalJobContext ctx(job);
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = (*engine)->Run(ctx, resume ? &checkpoint : nullptr);
  std::signal(SIGINT, SIG_DFL);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!status.ok()) {
    bar.PrintLine(std::cerr, "");
    if (absl::IsCancelled(status)) {
      return Fail(kExitJobFailed, job.checkpoint_path.empty()
                                      ? "interrupted (pass --checkpoint=FILE to be able to resume)"
                                      : absl::StrCat("interrupted; run the same command again to resume from ",
                                                     job.checkpoint_path));
    }
    return Fail(absl::IsInvalidArgument(status) ? kExitUsage : kExitJobFailed, status.message());
  }
  if (!job.checkpoint_path.empty()) std::filesystem::remove(job.checkpoint_path, error);  // done: nothing to resume
  bar.PrintLine(std::cerr, absl::StrFormat("done in %.1f s; previews in %s/", seconds, job.preview_dir));
  std::cout << "saved " << job.output_glb << "\n";
  return kExitOk;
}

}  // namespace psd3d::cli
