// psd3d-tinyworld train-prior: trains the tiny diffusion prior (worker/tinyworld/tiny_prior.h) on
// renders made on the fly, and writes prior.safetensors (the EMA weights, F16) plus models["prior"] of
// the manifest into --pack, and the loss curve (CSV and PNG) into --out.
//
//   psd3d-tinyworld train-prior                      # the shipped run (H100); rerun after exit code 3
//   psd3d-tinyworld train-prior --device=cpu --prior_arch=tiny --prior_steps=20 --prior_batch=4   # smoke
//
// Data: every step draws `prior_batch` (subject, template, yaw, camera) from the 42 seen subjects × the
// 4 prompt templates, yaw uniform in [0°, 360°), cameras from SampleWorldCameras, and renders them
// with RenderScenes on the training device; 10% of the prompts are replaced by the empty prompt
// (classifier-free guidance). No image is stored or seen twice. Loss: ε-MSE at t uniform in [0, 1000).
//
// Sizes and hyper-parameters (defaults = the shipped run on one H100):
// - Network: the default TinyPriorConfig: UNet widths 32/64/128 at 64²/32²/16², one ResBlock per level
//   down and two up, self-attention at 16², cross-attention at 32² and 16² (2.78 M parameters); text
//   encoder 2 layers of width 128 (≈0.27 M). 6.1 MB as F16. The world is simple (one flat-colored
//   primitive on white), so capacity goes where the decisions are: the 16² level, which sees the whole
//   object, carries attention and 128 channels; the 64² level only paints edges at 32 channels. About
//   3 GFLOP per image forward (≈9 GFLOP forward+backward).
// - Batch 128, AdamW lr 3e-4 (β 0.9/0.999, weight decay 0.01 on weight matrices only), 300 warm-up
//   steps then cosine decay to 10%, gradient norm clipped at 1. Batch 128 at lr 3e-4 is the usual
//   setting for small DDPMs; the cosine tail sharpens the last weights the EMA averages.
// - EMA of the weights with decay min(0.999, (1+step)/(10+step)) (≈1000-step horizon, warmed up so
//   early averages do not cling to the initialization); the EMA weights are what ships.
// - 10000 steps (1.28 M renders, each subject ~30 k times). Estimate for the H100 (this machine has no
//   GPU): ~1.2 TFLOP per step (TF32) plus memory-bound normalization and activations at 64², i.e.
//   roughly 25–50 ms per step, so the run takes about 4–8 minutes: one 510 s chunk, or two if reality
//   is slower (the progress lines print steps/s; the schedule depends on steps, not time, so a slower
//   machine gives the same model later). A default-config CPU step of batch 8 takes 4–8 s on the
//   2-core CI machine, so CPU runs are smoke tests (--prior_arch=tiny).
// - Speed on CUDA: everything on the device, TF32 and cuDNN autotuning on, no host synchronization in
//   the training math (the loss is summed on the device and read every `prior_log_every` steps;
//   gradient clipping and AdamW run on one flat buffer, EMA with multi-tensor ops: a handful of kernels
//   instead of several per parameter tensor; the batch's prompt rows are copied non-blocking).
// - Resumable: a checkpoint (torch archives of the weights, the EMA and the optimizer state, and
//   state.json) is written every `prior_checkpoint_every` and when --time_budget runs out (exit code
//   3); rerunning the same command resumes. Step i's data, noise and timesteps come from seeds
//   PairStreamSeed(--seed, stream, i), so a resumed run draws exactly what an uninterrupted one would
//   (bit-identical on the CPU). Rerunning a finished run only re-exports.
// - Metrics (manifest): ε-MSE of the shipped (EMA, F16-rounded) weights on fixed batches of seen and of
//   held-out subjects, t evenly spread over [0, 1000), from a stream training never draws from.
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <torch/nn/module.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/tinyworld/command.h"
#include "tools/tinyworld/training_run.h"
#include "worker/tinyworld/degrade.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/tiny_prior.h"

ABSL_FLAG(std::string, prior_arch, "default", "train-prior: network size, default (shipped) or tiny (CPU smoke tests)");
ABSL_FLAG(int64_t, prior_steps, 10000, "train-prior: optimizer steps of the whole run");
ABSL_FLAG(int64_t, prior_batch, 128, "train-prior: fresh renders per step");
ABSL_FLAG(double, prior_lr, 3e-4, "train-prior: peak AdamW learning rate");
ABSL_FLAG(int64_t, prior_warmup, 300, "train-prior: linear warm-up steps before the cosine decay to 10%");
ABSL_FLAG(double, prior_weight_decay, 0.01, "train-prior: AdamW weight decay (weight matrices and kernels only)");
ABSL_FLAG(double, prior_grad_clip, 1.0, "train-prior: maximum global gradient norm");
ABSL_FLAG(double, prior_ema, 0.999, "train-prior: EMA decay of the shipped weights");
ABSL_FLAG(double, prior_cfg_dropout, 0.1, "train-prior: share of prompts replaced by the empty prompt");
ABSL_FLAG(int64_t, prior_log_every, 100, "train-prior: steps between progress lines (and loss-curve points)");
ABSL_FLAG(absl::Duration, prior_checkpoint_every, absl::Minutes(3), "train-prior: time between checkpoints");
ABSL_FLAG(int64_t, prior_metric_batch, 256, "train-prior: images per fixed metric batch (seen and held-out)");

namespace psd3d::tinyworld {
namespace {

// Seed streams (PairStreamSeed): data per step, noise per step, initialization, metric batches.
constexpr uint64_t kDataStream = 11, kNoiseStream = 12, kInitStream = 13, kMetricStream = 14;

constexpr const char* kLabel = "train-prior";
// Columns of the loss log (state.json, prior-loss.csv).
const std::vector<std::string> kLogColumns = {"eps_mse", "grad_norm"};

struct Run {
  std::string arch;
  TinyPriorConfig config;
  uint64_t seed = 0;
  int64_t steps = 0, batch = 0, warmup = 0;
  double lr = 0, weight_decay = 0, grad_clip = 0, ema = 0, cfg_dropout = 0;

  // The settings a checkpoint must share with the command that resumes it.
  JsonValue Identity() const {
    JsonValue j = JsonValue::Object();
    j.Set("arch", JsonValue::String(arch));
    j.Set("architecture", TinyPriorConfigToJson(config));
    j.Set("seed", JsonValue::Uint(seed));
    j.Set("steps", JsonValue::Int(steps));
    j.Set("batch", JsonValue::Int(batch));
    j.Set("warmup", JsonValue::Int(warmup));
    j.Set("lr", JsonValue::Double(lr));
    j.Set("weight_decay", JsonValue::Double(weight_decay));
    j.Set("grad_clip", JsonValue::Double(grad_clip));
    j.Set("ema", JsonValue::Double(ema));
    j.Set("cfg_dropout", JsonValue::Double(cfg_dropout));
    return j;
  }
};

void Fail(const std::string& what) { PrintFailure(kLabel, what); }

// The network of --prior_arch: the shipped default, or a tiny one for CPU smoke runs; completed with
// the tokenizer's sizes as TinyPrior::Create does.
absl::StatusOr<TinyPriorConfig> ArchConfig(const std::string& arch) {
  TinyPriorConfig c;
  if (arch == "tiny") {
    c.text.dim = 32;
    c.text.heads = 2;
    c.text.layers = 1;
    c.text.mlp_dim = 64;
    c.unet.channels = {16, 32, 32};
    c.unet.head_dim = 16;
    c.unet.embed_dim = 32;
  } else if (arch != "default") {
    return absl::InvalidArgumentError(absl::StrCat("--prior_arch must be default or tiny, got '", arch, "'"));
  }
  c.text.vocab_size = Tokenizer::TinyWorld().vocab_size();
  c.text.max_length = Tokenizer::TinyWorld().max_length();
  c.unet.context_dim = c.text.dim;
  return c;
}

double LearningRate(const Run& run, int64_t step) {
  return WarmupCosineLr(step, run.warmup, run.steps, run.lr, /*floor_fraction=*/0.1);
}

double EmaDecay(const Run& run, int64_t step) {
  return std::min(run.ema, static_cast<double>(1 + step) / static_cast<double>(10 + step));
}

// A generator for device-side randomness seeded `seed`: a fresh CPU generator, or the device's default
// generator re-seeded (CUDA generators need CUDA headers to construct; re-seeding per step keeps runs
// resumable).
at::Generator DeviceGenerator(const at::Device& device, uint64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Generator g = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
  return g;
}

int64_t CountParameters(const torch::nn::Module& module, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& p : module.named_parameters()) {
    if (p.key().rfind(prefix, 0) == 0) n += p.value().numel();
  }
  return n;
}

// --- data ----------------------------------------------------------------------------------------

// Token ids of every (subject, template) prompt of `subjects`, row s·T + k, plus the empty prompt last.
struct PromptTable {
  std::vector<Subject> subjects;
  int64_t templates = 0;
  at::Tensor ids;  // [S·T + 1, L] on the device

  int64_t EmptyRow() const { return ids.size(0) - 1; }
};

absl::StatusOr<PromptTable> MakePromptTable(const std::vector<Subject>& subjects, const Tokenizer& tokenizer,
                                            const at::Device& device) {
  PromptTable table;
  table.subjects = subjects;
  table.templates = static_cast<int64_t>(PromptTemplates().size());
  std::vector<std::string> prompts;
  for (const Subject& s : subjects) {
    for (int k = 0; k < table.templates; ++k) prompts.push_back(MakePrompt(s, k));
  }
  prompts.emplace_back("");
  absl::StatusOr<at::Tensor> ids = tokenizer.EncodeBatch(prompts);
  if (!ids.ok()) return ids.status();
  table.ids = ids->to(device);
  return table;
}

struct Batch {
  at::Tensor x0;     // [B,3,64,64] latents in [−1,1]
  at::Tensor ids;    // [B,L]
  at::Tensor t;      // [B] int64
  at::Tensor noise;  // [B,3,64,64]
  CameraBatch cameras;
};

// Batch `index` of a data stream: subjects, templates, yaws and dropout from a CPU generator, renders
// on the device, timesteps and noise from the device generator.
Batch MakeBatch(TinyPrior& prior, const PromptTable& table, int64_t size, double dropout, uint64_t data_seed,
                uint64_t noise_seed, const at::Tensor* fixed_t = nullptr) {
  const at::Device device = prior.device();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(data_seed);
  const at::Tensor u = at::rand({4, size}, gen);
  const auto uu = u.accessor<float, 2>();
  const int64_t subjects = static_cast<int64_t>(table.subjects.size());
  std::vector<Scene> scenes;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < size; ++i) {
    const int64_t s = std::min<int64_t>(subjects - 1, static_cast<int64_t>(uu[0][i] * subjects));
    const int64_t k = std::min<int64_t>(table.templates - 1, static_cast<int64_t>(uu[1][i] * table.templates));
    scenes.push_back(SubjectScene(table.subjects[s], uu[2][i] * static_cast<float>(2 * M_PI)));
    rows.push_back(uu[3][i] < dropout ? table.EmptyRow() : s * table.templates + k);
  }
  Batch b;
  b.cameras = SampleWorldCameras(size, gen, device);
  RenderOptions render;
  render.size = prior.image_size();
  b.x0 = prior.Encode(RenderScenes(scenes, b.cameras, render));
  b.ids = table.ids.index_select(0, at::tensor(rows, at::kLong).to(device, at::kLong, /*non_blocking=*/true));
  at::Generator noise_gen = DeviceGenerator(device, noise_seed);
  const int64_t steps = prior.schedule().num_steps();
  b.t = fixed_t != nullptr
            ? fixed_t->to(device)
            : at::randint(0, steps, {size}, noise_gen, at::TensorOptions().dtype(at::kLong).device(device));
  b.noise = at::randn(b.x0.sizes(), noise_gen, b.x0.options());
  return b;
}

at::Tensor EpsLoss(TinyPrior& prior, const Batch& b) {
  const at::Tensor x_t = prior.schedule().AddNoise(b.x0, b.noise, b.t);
  return (prior.PredictNoise(x_t, b.t, prior.EncodeIds(b.ids), b.cameras) - b.noise).pow(2).mean();
}

// --- optimizer and EMA ---------------------------------------------------------------------------

// AdamW with global-norm gradient clipping over one flat buffer: the gradients are concatenated once,
// so clipping and the moment updates are a few kernels whatever the number of parameter tensors, and
// the clip factor stays on the device (no host synchronization).
class FlatAdamW {
 public:
  FlatAdamW(std::vector<at::Tensor> params, double weight_decay)
      : params_(std::move(params)), weight_decay_(weight_decay) {
    int64_t total = 0;
    for (const at::Tensor& p : params_) {
      sizes_.push_back(p.numel());
      total += p.numel();
      if (p.dim() >= 2) decayed_.push_back(p);
    }
    m_ = at::zeros({total}, params_.front().options().requires_grad(false));
    v_ = at::zeros_like(m_);
  }

  // One update; returns the gradient norm before clipping (a device scalar).
  at::Tensor Step(double lr, double max_norm) {
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> grads;
    for (const at::Tensor& p : params_) {
      grads.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}, p.options()));
    }
    at::Tensor g = at::cat(grads);
    const at::Tensor norm = g.norm();
    g.mul_(at::clamp_max((norm + 1e-6).reciprocal() * max_norm, 1.0));
    ++step_;
    m_.mul_(kBeta1).add_(g, 1 - kBeta1);
    v_.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
    const double bias1 = 1 - std::pow(kBeta1, static_cast<double>(step_));
    const double bias2 = 1 - std::pow(kBeta2, static_cast<double>(step_));
    const at::Tensor update = m_ / (v_.sqrt() / std::sqrt(bias2) + kEps);
    if (weight_decay_ > 0) at::_foreach_mul_(decayed_, 1 - lr * weight_decay_);
    std::vector<at::Tensor> pieces = update.split_with_sizes(sizes_);
    for (size_t i = 0; i < pieces.size(); ++i) pieces[i] = pieces[i].view(params_[i].sizes());
    at::_foreach_add_(params_, pieces, -lr / bias1);
    return norm;
  }

  void ZeroGrad() {
    for (at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
  }

  void Save(torch::serialize::OutputArchive& archive) const {
    archive.write("exp_avg", m_);
    archive.write("exp_avg_sq", v_);
    archive.write("step", at::tensor(step_, at::kLong));
  }
  void Load(torch::serialize::InputArchive& archive) {
    at::Tensor m, v, step;
    archive.read("exp_avg", m);
    archive.read("exp_avg_sq", v);
    archive.read("step", step);
    TORCH_CHECK(m.sizes() == m_.sizes() && v.sizes() == v_.sizes(), "optimizer state of another network");
    m_.copy_(m);
    v_.copy_(v);
    step_ = step.item<int64_t>();
  }

 private:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  std::vector<at::Tensor> params_, decayed_;
  std::vector<int64_t> sizes_;
  double weight_decay_;
  at::Tensor m_, v_;
  int64_t step_ = 0;
};

// shadow ← d·shadow + (1−d)·params, as two multi-tensor ops.
void UpdateEma(std::vector<at::Tensor>& shadow, const std::vector<at::Tensor>& params, double decay) {
  c10::NoGradGuard no_grad;
  at::_foreach_mul_(shadow, decay);
  at::_foreach_add_(shadow, params, 1 - decay);
}

// --- checkpoints ---------------------------------------------------------------------------------

std::string CheckpointDir() { return absl::GetFlag(FLAGS_checkpoint_dir) + "/prior"; }

struct Trainables {
  TinyPrior* model;
  TinyPrior* ema;
  FlatAdamW* optimizer;
};

absl::Status SaveCheckpoint(const Run& run, const TrainState& state, const Trainables& t) {
  return tinyworld::SaveCheckpoint(
      CheckpointDir(), run.Identity(), state,
      {{"model.pt", [&](torch::serialize::OutputArchive& a) { t.model->module().save(a); }},
       {"ema.pt", [&](torch::serialize::OutputArchive& a) { t.ema->module().save(a); }},
       {"optimizer.pt", [&](torch::serialize::OutputArchive& a) { t.optimizer->Save(a); }}});
}

// Restores the state, weights, EMA and optimizer when a checkpoint of this run exists; false if none.
absl::StatusOr<bool> LoadCheckpoint(const Run& run, TrainState* state, const Trainables& t) {
  return tinyworld::LoadCheckpoint(
      CheckpointDir(), run.Identity(), t.model->device(), state,
      {{"model.pt", [&](torch::serialize::InputArchive& a) { t.model->module().load(a); }},
       {"ema.pt", [&](torch::serialize::InputArchive& a) { t.ema->module().load(a); }},
       {"optimizer.pt", [&](torch::serialize::InputArchive& a) { t.optimizer->Load(a); }}});
}

// --- outputs -------------------------------------------------------------------------------------

// ε-MSE of `prior` on a fixed batch of `subjects` (templates, views and yaws from the metric stream), t
// evenly spread over [0, T), evaluated in chunks of `chunk`.
double FixedBatchLoss(TinyPrior& prior, const std::vector<Subject>& subjects, const Run& run, int64_t size,
                      int64_t chunk, uint64_t stream_index) {
  absl::StatusOr<PromptTable> table = MakePromptTable(subjects, prior.tokenizer(), prior.device());
  TORCH_CHECK(table.ok(), table.status().ToString());
  c10::NoGradGuard no_grad;
  const int64_t steps = prior.schedule().num_steps();
  double sum = 0;
  for (int64_t done = 0, k = 0; done < size; done += chunk, ++k) {
    const int64_t n = std::min(chunk, size - done);
    std::vector<int64_t> spread;
    for (int64_t i = done; i < done + n; ++i) spread.push_back(i * steps / size);
    const at::Tensor t = at::tensor(spread, at::kLong);
    const uint64_t index = stream_index * 1000 + static_cast<uint64_t>(k);
    const Batch b = MakeBatch(prior, *table, n, /*dropout=*/0, PairStreamSeed(run.seed, kMetricStream, 2 * index),
                              PairStreamSeed(run.seed, kMetricStream, 2 * index + 1), &t);
    sum += EpsLoss(prior, b).item<double>() * static_cast<double>(n);
  }
  return sum / static_cast<double>(size);
}

JsonValue Metrics(TinyPrior& shipped, const Run& run) {
  const int64_t size = std::max<int64_t>(1, absl::GetFlag(FLAGS_prior_metric_batch));
  const int64_t chunk = std::min<int64_t>(size, std::max<int64_t>(1, run.batch));
  JsonValue m = JsonValue::Object();
  m.Set("eps_mse_seen", JsonValue::Double(FixedBatchLoss(shipped, SeenSubjects(), run, size, chunk, 1)));
  m.Set("eps_mse_held_out", JsonValue::Double(FixedBatchLoss(shipped, HeldOutSubjects(), run, size, chunk, 2)));
  m.Set("metric_images", JsonValue::Int(size));
  m.Set("metric_note", JsonValue::String("EMA weights rounded to F16 (what ships); fixed renders, t evenly over "
                                         "[0, 1000), a seed stream training never draws from"));
  return m;
}

absl::Status WriteLossFiles(const Run& run, const TrainState& state) {
  return WriteTrainingLog(
      state.log, absl::GetFlag(FLAGS_out), "prior-loss",
      {state.log.Series(absl::StrCat("eps MSE (mean of ", absl::GetFlag(FLAGS_prior_log_every), " steps)"), 0),
       state.log.Series("gradient norm (before clipping)", 1)},
      absl::StrCat("tiny prior (", run.arch, ", batch ", run.batch, ")"), "loss / norm");
}

JsonValue TrainingJson(const Run& run, const TrainState& state, const at::Device& device) {
  JsonValue t = run.Identity();
  t.Set("init_seed", JsonValue::Uint(PairStreamSeed(run.seed, kInitStream, 0)));
  t.Set("images_seen", JsonValue::Int(state.step * run.batch));
  SetTimingJson(t, state, device);
  t.Set("optimizer", JsonValue::String("AdamW, linear warm-up, cosine decay to 10%, global-norm clipping"));
  t.Set("weights", JsonValue::String("EMA"));
  t.Set("data", JsonValue::String("42 seen subjects x 4 templates, random yaw and world camera, rendered per step"));
  if (!state.log.empty()) t.Set("final_loss", JsonValue::Double(state.log.Last(0)));
  return t;
}

// --- the command ---------------------------------------------------------------------------------

absl::StatusOr<Run> RunFromFlags() {
  Run run;
  run.arch = absl::GetFlag(FLAGS_prior_arch);
  absl::StatusOr<TinyPriorConfig> config = ArchConfig(run.arch);
  if (!config.ok()) return config.status();
  run.config = *config;
  run.seed = absl::GetFlag(FLAGS_seed);
  run.steps = absl::GetFlag(FLAGS_prior_steps);
  run.batch = absl::GetFlag(FLAGS_prior_batch);
  run.warmup = std::max<int64_t>(1, absl::GetFlag(FLAGS_prior_warmup));
  run.lr = absl::GetFlag(FLAGS_prior_lr);
  run.weight_decay = absl::GetFlag(FLAGS_prior_weight_decay);
  run.grad_clip = absl::GetFlag(FLAGS_prior_grad_clip);
  run.ema = absl::GetFlag(FLAGS_prior_ema);
  run.cfg_dropout = absl::GetFlag(FLAGS_prior_cfg_dropout);
  if (run.steps < 1 || run.batch < 1 || !(run.lr > 0) || !(run.grad_clip > 0) || !(run.ema >= 0 && run.ema < 1) ||
      !(run.cfg_dropout >= 0 && run.cfg_dropout <= 1) || !(run.weight_decay >= 0)) {
    return absl::InvalidArgumentError(
        "need --prior_steps ≥ 1, --prior_batch ≥ 1, --prior_lr > 0, --prior_grad_clip > 0, --prior_ema in [0,1), "
        "--prior_cfg_dropout in [0,1], --prior_weight_decay ≥ 0");
  }
  return run;
}

int TrainPrior() {
  absl::StatusOr<Run> parsed = RunFromFlags();
  if (!parsed.ok()) {
    Fail(std::string(parsed.status().message()));
    return 1;
  }
  const Run& run = *parsed;
  const at::Device device = FlagDevice();
  EnableFastCudaMath(device);
  const uint64_t init_seed = PairStreamSeed(run.seed, kInitStream, 0);
  absl::StatusOr<std::unique_ptr<TinyPrior>> model = TinyPrior::Create(run.config, device, init_seed);
  absl::StatusOr<std::unique_ptr<TinyPrior>> ema = TinyPrior::Create(run.config, device, init_seed);
  if (!model.ok() || !ema.ok()) {
    Fail(std::string((model.ok() ? ema.status() : model.status()).message()));
    return 1;
  }
  (*ema)->SetTrainable(false);
  std::vector<at::Tensor> params = (*model)->module().parameters(), shadow = (*ema)->module().parameters();
  FlatAdamW optimizer(params, run.weight_decay);
  const Trainables trainables{model->get(), ema->get(), &optimizer};
  TrainState state(kLogColumns);
  absl::StatusOr<bool> resumed = LoadCheckpoint(run, &state, trainables);
  if (!resumed.ok()) {
    Fail(std::string(resumed.status().message()));
    return 1;
  }
  absl::StatusOr<PromptTable> table = MakePromptTable(SeenSubjects(), (*model)->tokenizer(), device);
  if (!table.ok()) {
    Fail(std::string(table.status().message()));
    return 1;
  }
  std::printf("train-prior: %lld parameters (UNet %lld), arch %s, batch %lld, %s at step %lld/%lld on %s\n",
              static_cast<long long>((*model)->NumParameters()),
              static_cast<long long>(CountParameters((*model)->module(), "unet.")), run.arch.c_str(),
              static_cast<long long>(run.batch), *resumed ? "resuming" : "starting", static_cast<long long>(state.step),
              static_cast<long long>(run.steps), device.str().c_str());
  std::fflush(stdout);

  const int64_t log_every = std::max<int64_t>(1, absl::GetFlag(FLAGS_prior_log_every));
  ChunkClock clock(state.wall_seconds, absl::GetFlag(FLAGS_time_budget), absl::GetFlag(FLAGS_prior_checkpoint_every));
  auto checkpoint = [&]() -> bool {
    state.wall_seconds = clock.WallSeconds();
    absl::Status s = SaveCheckpoint(run, state, trainables);
    if (!s.ok()) Fail(absl::StrCat("checkpoint: ", s.message()));
    clock.MarkCheckpoint();
    return s.ok();
  };

  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().device(device)), norm_sum = at::zeros_like(loss_sum);
  int64_t window = 0;
  while (state.step < run.steps) {
    const uint64_t step = static_cast<uint64_t>(state.step);
    const Batch batch =
        MakeBatch(**model, *table, run.batch, run.cfg_dropout, PairStreamSeed(run.seed, kDataStream, step),
                  PairStreamSeed(run.seed, kNoiseStream, step));
    const double lr = LearningRate(run, state.step);
    optimizer.ZeroGrad();
    const at::Tensor loss = EpsLoss(**model, batch);
    loss.backward();
    norm_sum += optimizer.Step(lr, run.grad_clip);
    UpdateEma(shadow, params, EmaDecay(run, state.step));
    loss_sum += loss.detach();
    ++window;
    ++state.step;

    if (state.step % log_every == 0 || state.step == run.steps) {
      const double l = loss_sum.item<double>() / window, g = norm_sum.item<double>() / window;
      state.log.Add(state.step, {l, g});
      std::printf("train-prior: step %lld/%lld loss %.4f grad-norm %.3f lr %.2e %.2f steps/s elapsed %.0f s\n",
                  static_cast<long long>(state.step), static_cast<long long>(run.steps), l, g, lr,
                  clock.EndWindow(window), clock.WallSeconds());
      std::fflush(stdout);
      loss_sum.zero_();
      norm_sum.zero_();
      window = 0;
    }
    // Every chunk makes progress: the budget is checked after a step.
    if (state.step < run.steps && clock.BudgetSpent()) return checkpoint() ? StopForBudget(kLabel, state.step) : 1;
    if (clock.CheckpointDue() && !checkpoint()) return 1;
  }
  if (!checkpoint()) return 1;  // a rerun of a finished run only re-exports

  // What ships: the EMA weights in F16, measured as they are.
  RoundToHalf(shadow);
  const JsonValue metrics = Metrics(**ema, run);
  const std::string pack = absl::GetFlag(FLAGS_pack);
  if (absl::Status s = (*ema)->Save(pack, TrainingJson(run, state, device), metrics); !s.ok()) {
    Fail(absl::StrCat("saving to ", pack, ": ", s.message()));
    return 1;
  }
  if (absl::Status s = WriteLossFiles(run, state); !s.ok()) {
    Fail(absl::StrCat("loss curve: ", s.message()));
    return 1;
  }
  std::printf(
      "train-prior: done, %lld steps in %.0f s (%.2f steps/s); wrote %s/%s and %s/prior-loss.{csv,png}; metrics %s\n",
      static_cast<long long>(state.step), state.wall_seconds,
      state.wall_seconds > 0 ? state.step / state.wall_seconds : 0.0, pack.c_str(), kPriorWeightsFile,
      absl::GetFlag(FLAGS_out).c_str(), metrics.Dump().c_str());
  return 0;
}

PSD3D_TINYWORLD_COMMAND("train-prior",
                        "trains the tiny diffusion prior on fresh renders of the 42 seen subjects (EMA weights ship)",
                        TrainPrior);

}  // namespace
}  // namespace psd3d::tinyworld
