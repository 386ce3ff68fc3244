// psd3d-pipeline-bench: what each guidance method costs per optimization step, stage by stage, under
// one quality preset, against SDS in the same stage (the target: PSD/SDS ≤ 2.0, stretch 1.5);
// with --full_job, the wall time of whole jobs (every step and the export).
//
// Step times: for each method one Pipeline runs every stage shortened to warmup + steps + 1 steps (so
// the stage's t-window schedule is compressed over the timed steps and PSD's ψ updates, which happen
// at low t only, come in their usual share); the first `warmup` steps of each stage are not timed, nor
// is the last one, which also builds the next stage. Each timed step is bracketed by device
// synchronizations. The mesh stages start from a coarse field trained for only those few steps, so
// their surfaces are simpler than in a real job; render sizes, views and grids are the preset's.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <torch/cuda.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/eval/eval_run.h"
#include "tools/eval/run_list.h"
#include "worker/pipeline/cpu_threads.h"
#include "worker/pipeline/pipeline.h"
#include "worker/pipeline/presets.h"
#include "worker/tinyworld/pack.h"

ABSL_FLAG(std::string, pack_dir, "", "Model pack folder (default: $PSD3D_PACK_DIR or models/tiny of the source tree)");
ABSL_FLAG(std::string, device, "", "cpu or cuda (default: cuda when available)");
ABSL_FLAG(std::string, quality, "draft", "Preset: draft, standard or high");
ABSL_FLAG(std::string, methods, "all", "Comma list of methods (sds first is the baseline); 'all' for the five");
ABSL_FLAG(int64_t, steps, 10, "Timed steps per stage");
ABSL_FLAG(int64_t, warmup, 3, "Untimed steps per stage before the timed ones");
ABSL_FLAG(std::string, prompt, "a red cube", "Prompt of every run");
ABSL_FLAG(uint64_t, seed, 1, "Seed of every run");
ABSL_FLAG(bool, full_job, false, "Time whole jobs (every step of the preset and the export) instead of steps");
ABSL_FLAG(double, steps_scale, 1.0, "--full_job: multiplies each stage's steps of the preset");
ABSL_FLAG(std::vector<std::string>, set, {},
          "Comma list of stage.field=value settings applied to every method's preset (worker/pipeline/presets.h "
          "SetConfigValue), e.g. all.psi_from_ranking=1; step tables and --full_job (not --components)");
ABSL_FLAG(bool, components, false,
          "Time the model calls a step is made of (prior, ψ update, reward, decode) at the coarse stage's batch "
          "instead of steps");

namespace psd3d {
namespace {

using Clock = std::chrono::steady_clock;
constexpr PipelineStage kStages[] = {PipelineStage::kCoarse, PipelineStage::kGeometry, PipelineStage::kTexture};

void Sync(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

struct Setup {
  Quality quality = Quality::kDraft;
  at::Device device = at::kCPU;
  std::vector<GuidanceMethod> methods;
  std::string prompt;
  uint64_t seed = 1;
};

// --set, applied to a method's preset.
absl::Status ApplySetFlag(PipelineConfig* config) {
  for (const std::string& setting : absl::GetFlag(FLAGS_set))
    if (absl::Status s = SetConfigValue(setting, config); !s.ok()) return s;
  return absl::OkStatus();
}

// One stage's timed steps of one method.
struct StageTiming {
  std::vector<double> ms;
  double prior_calls = 0;  // mean PredictNoise calls per timed step
};

// Runs the shortened pipeline of `method`, timing the steps of each stage.
absl::StatusOr<std::map<PipelineStage, StageTiming>> TimeSteps(eval::EvalModels& models, const Setup& setup,
                                                              GuidanceMethod method, int64_t warmup, int64_t steps) {
  PipelineConfig config = PresetConfig(setup.quality, method);
  if (absl::Status s = ApplySetFlag(&config); !s.ok()) return s;
  for (PipelineStage stage : kStages) {
    StageOverride o;
    o.steps = warmup + steps + 1;
    if (absl::Status s = ApplyStageOverride(stage, o, &config); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<Pipeline>> p =
      Pipeline::Create(*models.prior, models.reward.get(), setup.prompt, config, setup.seed, setup.device);
  if (!p.ok()) return p.status();
  std::map<PipelineStage, StageTiming> out;
  while ((*p)->stage() != PipelineStage::kExport) {
    Sync(setup.device);
    const Clock::time_point start = Clock::now();
    absl::StatusOr<PipelineStepReport> r = (*p)->Step();
    Sync(setup.device);
    const double ms = 1e3 * Seconds(start);
    if (!r.ok()) return r.status();
    if (r->step <= warmup || r->step > warmup + steps) continue;
    StageTiming& t = out[r->stage];
    t.ms.push_back(ms);
    t.prior_calls += static_cast<double>(r->detail.guidance.prior_calls) / static_cast<double>(steps);
  }
  return out;
}

// `fn`'s result, with an exception thrown inside the engine (a TORCH_CHECK) as an INTERNAL error, so
// the table names the method that failed.
template <typename T>
absl::StatusOr<T> Guarded(const std::function<absl::StatusOr<T>()>& fn) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
}

int StepTable(eval::EvalModels& models, const Setup& setup) {
  const int64_t warmup = absl::GetFlag(FLAGS_warmup), steps = absl::GetFlag(FLAGS_steps);
  if (warmup < 0 || steps < 1) {
    std::fprintf(stderr, "psd3d-pipeline-bench: need --warmup ≥ 0 and --steps ≥ 1\n");
    return 1;
  }
  std::map<GuidanceMethod, std::map<PipelineStage, StageTiming>> timings;
  for (GuidanceMethod m : setup.methods) {
    absl::StatusOr<std::map<PipelineStage, StageTiming>> t = Guarded<std::map<PipelineStage, StageTiming>>(
        [&] { return TimeSteps(models, setup, m, warmup, steps); });
    if (!t.ok()) {
      std::fprintf(stderr, "psd3d-pipeline-bench: %s: %s\n", std::string(GuidanceMethodName(m)).c_str(),
                   std::string(t.status().message()).c_str());
      return 1;
    }
    timings[m] = *std::move(t);
  }
  if (!absl::GetFlag(FLAGS_set).empty())
    std::printf("settings: %s\n", absl::StrJoin(absl::GetFlag(FLAGS_set), ", ").c_str());
  std::printf("quality %s on %s, prompt '%s', seed %d: median of %d timed steps after %d warm-up per stage "
              "(stages shortened to %d steps)\n\n",
              std::string(QualityName(setup.quality)).c_str(), setup.device.str().c_str(), setup.prompt.c_str(),
              static_cast<int>(setup.seed), static_cast<int>(steps), static_cast<int>(warmup),
              static_cast<int>(warmup + steps + 1));
  std::printf("| stage | method | median ms | mean ms | × SDS (median) | prior calls/step |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
  const bool has_sds = timings.count(GuidanceMethod::kSds) > 0;
  for (PipelineStage stage : kStages) {
    const double sds = has_sds ? Median(timings[GuidanceMethod::kSds][stage].ms) : 0;
    for (GuidanceMethod m : setup.methods) {
      const StageTiming& t = timings[m][stage];
      const double median = Median(t.ms);
      const std::string ratio = sds > 0 ? absl::StrFormat("%.2f", median / sds) : "–";
      std::printf("| %s | %s | %.1f | %.1f | %s | %.2f |\n", std::string(PipelineStageName(stage)).c_str(),
                  std::string(GuidanceMethodName(m)).c_str(), median, Mean(t.ms), ratio.c_str(), t.prior_calls);
    }
  }
  if (has_sds && timings.count(GuidanceMethod::kPsd)) {
    std::printf("\nPSD / SDS (target ≤ 2.0, stretch ≤ 1.5):");
    for (PipelineStage stage : kStages) {
      const double r = Median(timings[GuidanceMethod::kPsd][stage].ms) / Median(timings[GuidanceMethod::kSds][stage].ms);
      std::printf(" %s %.2f %s;", std::string(PipelineStageName(stage)).c_str(), r,
                  r <= 1.5 ? "(stretch met)" : r <= 2.0 ? "(met)" : "(missed)");
    }
    std::printf("\n");
  }
  return 0;
}

// Seconds of a whole job of `method`: each stage's steps, and the export (ExportGlb: color, atlas, bake,
// encode).
struct JobTiming {
  int64_t steps = 0;
  std::map<PipelineStage, double> seconds;  // kExport: the export
  double total = 0;
  // Two-noise methods: the mean reward gap between the one-step predictions and the mean preference
  // weight (PSD: λ·s(Δr); DreamDPO: share of views with the preference term) over every step.
  double reward_gap = 0, pref_weight = 0;
};

absl::StatusOr<JobTiming> TimeJob(eval::EvalModels& models, const Setup& setup, GuidanceMethod method, double scale) {
  absl::StatusOr<PipelineConfig> config = eval::EvalConfig(setup.quality, method, scale);
  if (!config.ok()) return config.status();
  if (absl::Status s = ApplySetFlag(&*config); !s.ok()) return s;
  Sync(setup.device);
  const Clock::time_point start = Clock::now();
  absl::StatusOr<std::unique_ptr<Pipeline>> p =
      Pipeline::Create(*models.prior, models.reward.get(), setup.prompt, *config, setup.seed, setup.device);
  if (!p.ok()) return p.status();
  JobTiming job;
  job.steps = (*p)->total_steps();
  Clock::time_point lap = start;
  while ((*p)->stage() != PipelineStage::kExport) {
    absl::StatusOr<PipelineStepReport> r = (*p)->Step();
    if (!r.ok()) return r.status();
    const GuidanceStats& g = r->detail.guidance;
    job.reward_gap += (g.reward_win - g.reward_lose) / static_cast<double>(job.steps);
    job.pref_weight += g.pref_weight / static_cast<double>(job.steps);
    if ((*p)->stage() != r->stage) {  // the stage's last step (and the next stage's setup)
      Sync(setup.device);
      job.seconds[r->stage] = Seconds(lap);
      lap = Clock::now();
    }
  }
  absl::StatusOr<std::string> glb = (*p)->ExportGlb();
  if (!glb.ok()) return glb.status();
  job.seconds[PipelineStage::kExport] = Seconds(lap);
  job.total = Seconds(start);
  return job;
}

int FullJobTable(eval::EvalModels& models, const Setup& setup) {
  const double scale = absl::GetFlag(FLAGS_steps_scale);
  std::printf("whole jobs: quality %s (steps ×%g) on %s, prompt '%s', seed %d\n\n",
              std::string(QualityName(setup.quality)).c_str(), scale, setup.device.str().c_str(),
              setup.prompt.c_str(), static_cast<int>(setup.seed));
  std::printf("| method | steps | coarse s | geometry s | texture s | export s | total s | × SDS | mean Δr | mean pref weight |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  double sds = 0;
  for (GuidanceMethod m : setup.methods) {
    absl::StatusOr<JobTiming> job = Guarded<JobTiming>([&] { return TimeJob(models, setup, m, scale); });
    if (!job.ok()) {
      std::fprintf(stderr, "psd3d-pipeline-bench: %s: %s\n", std::string(GuidanceMethodName(m)).c_str(),
                   std::string(job.status().message()).c_str());
      return 1;
    }
    if (m == GuidanceMethod::kSds) sds = job->total;
    const std::string ratio = sds > 0 ? absl::StrFormat("%.2f", job->total / sds) : "–";
    std::printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.3f | %.3f |\n",
                std::string(GuidanceMethodName(m)).c_str(), static_cast<int>(job->steps),
                job->seconds[PipelineStage::kCoarse], job->seconds[PipelineStage::kGeometry],
                job->seconds[PipelineStage::kTexture], job->seconds[PipelineStage::kExport], job->total, ratio.c_str(),
                job->reward_gap, job->pref_weight);
    std::fflush(stdout);
  }
  return 0;
}

// Over `steps` calls after `warmup`, each bracketed by device synchronizations: median milliseconds of `fn` from start to the device being idle again, and of the host's part alone
// (until `fn` returns: where the two are close, the call is bound by the host issuing its work).
struct CallTime {
  double ms = 0, host_ms = 0;
};

CallTime TimeCall(const Setup& setup, int64_t warmup, int64_t steps, const std::function<void()>& fn) {
  std::vector<double> ms, host;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    Sync(setup.device);
    const Clock::time_point start = Clock::now();
    fn();
    const double issued = 1e3 * Seconds(start);
    Sync(setup.device);
    if (i >= warmup) {
      ms.push_back(1e3 * Seconds(start));
      host.push_back(issued);
    }
  }
  return {Median(ms), Median(host)};
}

// Where a step's time goes: the model calls of one step at the coarse stage's batch of V views, timed
// alone (what is left of a step is rendering and its backward).
int ComponentTable(eval::EvalModels& models, const Setup& setup) {
  const int64_t warmup = absl::GetFlag(FLAGS_warmup), steps = absl::GetFlag(FLAGS_steps);
  const PipelineConfig config = PresetConfig(setup.quality, GuidanceMethod::kPsd);
  const int64_t v = config.coarse.views, size = models.prior->image_size();
  at::Generator gen = at::detail::createCPUGenerator(setup.seed);
  const CameraBatch cams = SampleCameras(ViewRanges{}, v, gen, setup.device);
  const at::TensorOptions opt = at::TensorOptions().device(setup.device);
  at::Tensor images = at::rand({v, 3, size, size}, gen).to(setup.device);
  at::Tensor z = models.prior->Encode(images);
  absl::StatusOr<at::Tensor> text = models.prior->EncodePrompt(setup.prompt);
  absl::StatusOr<at::Tensor> reward_text = models.reward->EncodePrompt(setup.prompt);
  if (!text.ok() || !reward_text.ok()) {
    std::fprintf(stderr, "psd3d-pipeline-bench: %s\n", std::string((text.ok() ? reward_text.status() : text.status()).message()).c_str());
    return 1;
  }
  at::Tensor ctx = text->to(setup.device);
  const at::Tensor t = at::full({v}, 400, opt.dtype(at::kLong));
  auto prior_call = [&](int64_t copies) {  // copies × V images in one no-grad call
    c10::NoGradGuard no_grad;
    models.prior->PredictNoise(z.repeat({copies, 1, 1, 1}), t.repeat({copies}), ctx.expand({copies * v, -1, -1}),
                               cams.repeat(copies));
  };
  struct Row {
    std::string what;
    CallTime time;
  };
  std::vector<Row> rows;
  rows.push_back({absl::StrFormat("prior ε̂, %d images (SDS: 1 noise × 2 CFG branches)", 2 * v),
                  TimeCall(setup, warmup, steps, [&] { prior_call(2); })});
  rows.push_back({absl::StrFormat("prior ε̂, %d images (PSD: 2 noises × 2 CFG branches)", 4 * v),
                  TimeCall(setup, warmup, steps, [&] { prior_call(4); })});
  rows.push_back({absl::StrFormat("ψ update: prior + decode + reward, forward and backward, %d images", v),
                  TimeCall(setup, warmup, steps, [&] {
                    c10::AutoGradMode grad(true);
                    at::Tensor psi = ctx.detach().clone().set_requires_grad(true);
                    at::Tensor eps = models.prior->PredictNoise(z, t, psi.expand({v, -1, -1}), cams);
                    at::Tensor x0 = models.prior->Decode(models.prior->schedule().PredictX0(z, eps, int64_t{400})).clamp(0, 1);
                    models.reward->Score(x0, *reward_text).mean().backward();
                  })});
  rows.push_back({absl::StrFormat("reward of %d one-step predictions (PSD ranks 2 noises)", 2 * v),
                  TimeCall(setup, warmup, steps, [&] {
                    c10::NoGradGuard no_grad;
                    models.reward->Score(images.repeat({2, 1, 1, 1}), *reward_text);
                  })});
  std::printf("model calls of one coarse step, quality %s on %s (V = %d views, %dx%d): median of %d calls after %d "
              "warm-up\n\n| call | median ms | host ms |\n| --- | ---: | ---: |\n",
              std::string(QualityName(setup.quality)).c_str(), setup.device.str().c_str(), static_cast<int>(v),
              static_cast<int>(size), static_cast<int>(size), static_cast<int>(steps), static_cast<int>(warmup));
  for (const Row& r : rows) std::printf("| %s | %.2f | %.2f |\n", r.what.c_str(), r.time.ms, r.time.host_ms);
  return 0;
}

absl::StatusOr<Setup> ReadSetup() {
  Setup s;
  absl::StatusOr<Quality> quality = ParseQuality(absl::GetFlag(FLAGS_quality));
  if (!quality.ok()) return quality.status();
  s.quality = *quality;
  absl::StatusOr<at::Device> device = eval::ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return device.status();
  s.device = *device;
  absl::StatusOr<std::vector<GuidanceMethod>> methods = eval::ParseMethods(absl::GetFlag(FLAGS_methods));
  if (!methods.ok()) return methods.status();
  s.methods = *methods;
  s.prompt = absl::GetFlag(FLAGS_prompt);
  s.seed = absl::GetFlag(FLAGS_seed);
  return s;
}

}  // namespace
}  // namespace psd3d

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "psd3d-pipeline-bench [flags]: median step time of each guidance method in each stage of a quality "
      "preset, and its ratio to SDS; --full_job times whole jobs instead.\n"
      "  psd3d-pipeline-bench --device=cuda --quality=standard --steps=20 --warmup=5\n"
      "  psd3d-pipeline-bench --device=cuda --quality=standard --full_job --methods=sds,psd");
  absl::FlagsUsageConfig usage;  // --help lists this file's flags
  usage.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "bench/pipeline/"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<psd3d::Setup> setup = psd3d::ReadSetup();
  if (!setup.ok()) {
    std::fprintf(stderr, "psd3d-pipeline-bench: %s\n", std::string(setup.status().message()).c_str());
    return 1;
  }
  psd3d::UseAllCpuCores();
  std::string pack = absl::GetFlag(FLAGS_pack_dir);
  if (pack.empty()) pack = psd3d::tinyworld::DefaultPackDir();
  absl::StatusOr<psd3d::eval::EvalModels> models = psd3d::eval::LoadEvalModels(pack, setup->device);
  if (!models.ok()) {
    std::fprintf(stderr, "psd3d-pipeline-bench: %s\n", std::string(models.status().message()).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_components)) return psd3d::ComponentTable(*models, *setup);
  return absl::GetFlag(FLAGS_full_job) ? psd3d::FullJobTable(*models, *setup) : psd3d::StepTable(*models, *setup);
}
