// psd3d-tinyworld train-reward: trains a tiny reward model (worker/tinyworld/tiny_reward.h) with the
// Bradley–Terry loss −log σ(r_w − r_l) on fresh preference pairs (worker/tinyworld/degrade.h) over all
// 48 subjects, all 4 prompt templates and all 9 degradation kinds, and writes <key>.safetensors plus
// its manifest entry into --pack, and the loss curve (CSV and PNG) into --out.
//
//   psd3d-tinyworld train-reward --reward_key=reward                                  # guides PSD
//   psd3d-tinyworld train-reward --reward_key=reward_eval --seed=2 --reward_width=24  # the check
//
// Sizes and hyper-parameters (the defaults are meant for the shipped run on one H100):
// - Network: width 32 (835 k parameters, 1.7 MB as F16 safetensors) for "reward"; "reward_eval" is
//   width 24 (503 k) with another seed, so the two share no initialization and differ in capacity:
//   their agreement measures what the task determines, not what one network happened to learn.
// - Data: every step renders `reward_batch` fresh pairs (no pair is seen twice). 25% are graded pairs
//   (same kind, milder wins), which teach the reward to order severities, so its gradient points from
//   worse to better rather than being flat away from a decision boundary. Half of the clean-vs-degraded
//   pairs show the loser from another view, so scores are comparable across views (PSD compares
//   renders of random views).
// - Optimization: AdamW, lr 1e-3 with 200 warm-up steps and cosine decay to 5% at `reward_steps`,
//   weight decay 1e-4, batch 256 pairs (512 images), 1e-4·r² score decay. On fresh data the network
//   does not overfit, so the length is set by time: 4000 steps = 1 M pairs.
// - Evidence (CPU, this machine): width 16, batch 48, 400 steps (19 k pairs, 11 min) already reaches
//   97.8% pairwise accuracy on 540 fresh clean-vs-degraded pairs (wrong color, the hardest kind, 85%;
//   the rest ≥ 98%), 99% on graded pairs, and the gradient check moves 44 of 48 wrong-color renders
//   toward the prompt's color (mean ΔE 78 → 70). The default run sees 50× the pairs at twice the width.
// - Speed: a step is one batched render of 512 scenes (grouped by shape list, ≤ 36 groups) and one
//   forward/backward of 512 images (≈ 0.85 GFLOP each). Measured on this 2-core machine (LibTorch CPU,
//   one thread): 20 s per default step (6.4 s rendering, 13.8 s network); width 16 at batch 48 runs
//   0.6–0.8 steps/s. Estimated for the H100 (not measured here): 20–50 ms per step, so 4000 steps take
//   about 1.5–3.5 minutes, inside one 510 s chunk.
// - Resumable: a checkpoint (torch archives of the weights and the optimizer, and state.json) is
//   written every `reward_checkpoint_every` and when --time_budget runs out (exit code 3, checked
//   after each step, so every chunk makes progress); rerunning the same command resumes. Batch i's
//   pairs come from PairStreamSeed(--seed, stream 1, i), so a resumed run trains on exactly the pairs
//   of an uninterrupted one: on the CPU, the weights come out bit for bit the same.
// - Metrics: after training, the weights are rounded to F16 (what ships) and scored on
//   `reward_metric_pairs` fresh clean-vs-degraded pairs from another stream, per degradation kind.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/archive.h>

#include <cmath>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/tinyworld/command.h"
#include "tools/tinyworld/training_run.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/tiny_reward.h"

ABSL_FLAG(std::string, reward_key, "reward",
          "train-reward: manifest key, reward (guides PSD) or reward_eval (another seed and width; evaluation only)");
ABSL_FLAG(int64_t, reward_width, 32, "train-reward: channels of the first CNN stage (stages: w, 2w, 2w, 4w, 4w)");
ABSL_FLAG(int64_t, reward_text_dim, 64, "train-reward: prompt embedding size");
ABSL_FLAG(int64_t, reward_steps, 4000, "train-reward: optimizer steps");
ABSL_FLAG(int64_t, reward_batch, 256, "train-reward: fresh preference pairs per step");
ABSL_FLAG(double, reward_lr, 1e-3, "train-reward: peak AdamW learning rate");
ABSL_FLAG(double, reward_weight_decay, 1e-4, "train-reward: AdamW weight decay");
ABSL_FLAG(int64_t, reward_warmup, 200, "train-reward: linear warm-up steps before the cosine decay");
ABSL_FLAG(double, reward_graded_fraction, 0.25, "train-reward: share of graded pairs (same kind, milder wins)");
ABSL_FLAG(int64_t, reward_log_every, 100, "train-reward: steps between progress lines (and loss-curve points)");
ABSL_FLAG(absl::Duration, reward_checkpoint_every, absl::Minutes(3), "train-reward: time between checkpoints");
ABSL_FLAG(int64_t, reward_metric_pairs, 1800,
          "train-reward: fresh clean-vs-degraded pairs (equal share per kind) scored for the manifest's metrics");

namespace psd3d::tinyworld {
namespace {

// Pair streams (PairStreamSeed): eval-reward uses its own (see eval_reward.cc).
constexpr uint64_t kTrainStream = 1, kInitStream = 2, kMetricStream = 3;

// Columns of the loss log (state.json, <key>-loss.csv).
const std::vector<std::string> kLogColumns = {"loss", "pair_accuracy"};

struct Run {
  std::string key;
  RewardNetConfig config;
  uint64_t seed;
  int64_t steps, batch, warmup;
  double lr, weight_decay, graded_fraction;

  // The settings a checkpoint must share with the command that resumes it.
  JsonValue Identity() const {
    JsonValue j = JsonValue::Object();
    j.Set("key", JsonValue::String(key));
    j.Set("architecture", config.ToJson());
    j.Set("seed", JsonValue::Uint(seed));
    j.Set("steps", JsonValue::Int(steps));
    j.Set("batch", JsonValue::Int(batch));
    j.Set("warmup", JsonValue::Int(warmup));
    j.Set("lr", JsonValue::Double(lr));
    j.Set("weight_decay", JsonValue::Double(weight_decay));
    j.Set("graded_fraction", JsonValue::Double(graded_fraction));
    return j;
  }
};

double LearningRate(const Run& run, int64_t step) {
  return WarmupCosineLr(step, run.warmup, run.steps, run.lr, /*floor_fraction=*/0.05);
}

void Fail(const std::string& what) { PrintFailure("train-reward", what); }

// --- checkpoints ---------------------------------------------------------------------------------

std::string CheckpointDir(const Run& run) { return absl::GetFlag(FLAGS_checkpoint_dir) + "/" + run.key; }

absl::Status SaveCheckpoint(const Run& run, const TrainState& state, const RewardNet& net,
                            const torch::optim::AdamW& optimizer) {
  return tinyworld::SaveCheckpoint(
      CheckpointDir(run), run.Identity(), state,
      {{"model.pt", [&](torch::serialize::OutputArchive& a) { net.module().save(a); }},
       {"optimizer.pt", [&](torch::serialize::OutputArchive& a) { optimizer.save(a); }}});
}

// Restores `state`, the weights and the optimizer when a checkpoint of this run exists; false if none.
absl::StatusOr<bool> LoadCheckpoint(const Run& run, TrainState* state, RewardNet* net, torch::optim::AdamW* optimizer) {
  return tinyworld::LoadCheckpoint(
      CheckpointDir(run), run.Identity(), net->device(), state,
      {{"model.pt", [&](torch::serialize::InputArchive& a) { net->module().load(a); }},
       {"optimizer.pt", [&](torch::serialize::InputArchive& a) { optimizer->load(a); }}});
}

// --- outputs -------------------------------------------------------------------------------------

// Pairwise accuracy per degradation kind and overall on fresh clean-vs-degraded pairs.
JsonValue AccuracyMetrics(const TinyReward& reward, const Run& run, int64_t total_pairs) {
  const at::Device device = reward.device();
  const int64_t per_kind = std::max<int64_t>(1, total_pairs / kNumDegradations);
  JsonValue per = JsonValue::Object();
  int64_t right_all = 0, count_all = 0;
  for (Degradation kind : AllDegradations()) {
    PairOptions options;
    options.kinds = {kind};
    options.graded_fraction = 0;
    int64_t right = 0;
    for (int64_t done = 0, batch = 0; done < per_kind; ++batch) {
      const int64_t n = std::min<int64_t>(200, per_kind - done);
      auto gen = at::make_generator<at::CPUGeneratorImpl>(
          PairStreamSeed(run.seed, kMetricStream, static_cast<uint64_t>(kind) * 100000 + batch));
      right += PairMargins(reward, MakePreferencePairs(n, options, gen, device)).gt(0).sum().item<int64_t>();
      done += n;
    }
    per.Set(std::string(DegradationName(kind)), JsonValue::Double(static_cast<double>(right) / per_kind));
    right_all += right;
    count_all += per_kind;
  }
  JsonValue m = JsonValue::Object();
  m.Set("pairwise_accuracy", JsonValue::Double(static_cast<double>(right_all) / count_all));
  m.Set("pairwise_accuracy_by_kind", std::move(per));
  m.Set("metric_pairs", JsonValue::Int(count_all));
  m.Set("metric_pairs_note", JsonValue::String("fresh clean-vs-degraded pairs, another seed stream than training"));
  return m;
}

absl::Status WriteLossFiles(const Run& run, const TrainState& state) {
  return WriteTrainingLog(state.log, absl::GetFlag(FLAGS_out), run.key + "-loss",
                          {state.log.Series("Bradley-Terry loss", 0),
                           state.log.Series("training pair error (1 - accuracy)", 1, [](double a) { return 1 - a; })},
                          absl::StrCat("tiny ", run.key, " (width ", run.config.width, ", batch ", run.batch, ")"),
                          "loss / error");
}

JsonValue TrainingJson(const Run& run, const TrainState& state, const at::Device& device) {
  JsonValue t = run.Identity();
  t.Set("init_seed", JsonValue::Uint(PairStreamSeed(run.seed, kInitStream, 0)));
  t.Set("pairs_seen", JsonValue::Int(state.step * run.batch));
  SetTimingJson(t, state, device);
  t.Set("optimizer", JsonValue::String("AdamW, linear warm-up, cosine decay to 5%"));
  if (!state.log.empty()) t.Set("final_loss", JsonValue::Double(state.log.Last(0)));
  return t;
}

// --- the command ---------------------------------------------------------------------------------

int TrainReward() {
  Run run;
  run.key = absl::GetFlag(FLAGS_reward_key);
  if (run.key != "reward" && run.key != "reward_eval") {
    Fail(absl::StrCat("--reward_key must be reward or reward_eval, got '", run.key, "'"));
    return 1;
  }
  run.config.width = absl::GetFlag(FLAGS_reward_width);
  run.config.text_dim = absl::GetFlag(FLAGS_reward_text_dim);
  run.config.vocab_size = Tokenizer::TinyWorld().vocab_size();
  run.config.max_length = Tokenizer::TinyWorld().max_length();
  run.seed = absl::GetFlag(FLAGS_seed);
  run.steps = absl::GetFlag(FLAGS_reward_steps);
  run.batch = absl::GetFlag(FLAGS_reward_batch);
  run.warmup = std::max<int64_t>(1, absl::GetFlag(FLAGS_reward_warmup));
  run.lr = absl::GetFlag(FLAGS_reward_lr);
  run.weight_decay = absl::GetFlag(FLAGS_reward_weight_decay);
  run.graded_fraction = absl::GetFlag(FLAGS_reward_graded_fraction);
  if (run.steps < 1 || run.batch < 1 || !(run.lr > 0)) {
    Fail("need --reward_steps ≥ 1, --reward_batch ≥ 1 and --reward_lr > 0");
    return 1;
  }
  const int64_t log_every = std::max<int64_t>(1, absl::GetFlag(FLAGS_reward_log_every));
  const at::Device device = FlagDevice();
  EnableFastCudaMath(device);

  absl::StatusOr<std::unique_ptr<TinyReward>> reward =
      TinyReward::Create(run.config, device, PairStreamSeed(run.seed, kInitStream, 0));
  if (!reward.ok()) {
    Fail(std::string(reward.status().message()));
    return 1;
  }
  RewardNet& net = (*reward)->net();
  torch::optim::AdamW optimizer(net.parameters(), torch::optim::AdamWOptions(run.lr).weight_decay(run.weight_decay));
  TrainState state(kLogColumns);
  absl::StatusOr<bool> resumed = LoadCheckpoint(run, &state, &net, &optimizer);
  if (!resumed.ok()) {
    Fail(std::string(resumed.status().message()));
    return 1;
  }
  std::printf("train-reward %s: %lld parameters, width %lld, batch %lld, %s at step %lld/%lld on %s\n", run.key.c_str(),
              static_cast<long long>(net.num_parameters()), static_cast<long long>(run.config.width),
              static_cast<long long>(run.batch), *resumed ? "resuming" : "starting", static_cast<long long>(state.step),
              static_cast<long long>(run.steps), device.str().c_str());
  std::fflush(stdout);

  PairOptions pair_options;
  pair_options.graded_fraction = run.graded_fraction;
  ChunkClock clock(state.wall_seconds, absl::GetFlag(FLAGS_time_budget), absl::GetFlag(FLAGS_reward_checkpoint_every));
  auto checkpoint = [&]() -> bool {
    state.wall_seconds = clock.WallSeconds();
    absl::Status s = SaveCheckpoint(run, state, net, optimizer);
    if (!s.ok()) Fail(absl::StrCat("checkpoint: ", s.message()));
    clock.MarkCheckpoint();
    return s.ok();
  };

  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().device(device)), right_sum = at::zeros_like(loss_sum);
  int64_t window = 0;
  while (state.step < run.steps) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(PairStreamSeed(run.seed, kTrainStream, state.step));
    const PreferencePairs pairs = MakePreferencePairs(run.batch, pair_options, gen, device);
    const double lr = LearningRate(run, state.step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

    const at::Tensor text = net.EncodeText(pairs.prompt_ids);
    const at::Tensor scores = net.Score(at::cat({pairs.winners, pairs.losers}), at::cat({text, text}));
    const at::Tensor winner = scores.narrow(0, 0, run.batch), loser = scores.narrow(0, run.batch, run.batch);
    const at::Tensor loss = BradleyTerryLoss(winner, loser);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    loss_sum += loss.detach();
    right_sum += winner.detach().gt(loser.detach()).to(at::kFloat).mean();
    ++window;
    ++state.step;

    if (state.step % log_every == 0 || state.step == run.steps) {
      const double l = loss_sum.item<double>() / window, a = right_sum.item<double>() / window;
      state.log.Add(state.step, {l, a});
      std::printf("train-reward %s: step %lld/%lld loss %.4f pair-acc %.4f lr %.2e %.2f steps/s elapsed %.0f s\n",
                  run.key.c_str(), static_cast<long long>(state.step), static_cast<long long>(run.steps), l, a, lr,
                  clock.EndWindow(window), clock.WallSeconds());
      std::fflush(stdout);
      loss_sum.zero_();
      right_sum.zero_();
      window = 0;
    }
    // Every chunk makes progress: the budget is checked after a step.
    if (state.step < run.steps && clock.BudgetSpent()) {
      return checkpoint() ? StopForBudget("train-reward " + run.key, state.step) : 1;
    }
    if (clock.CheckpointDue() && !checkpoint()) return 1;
  }
  if (!checkpoint()) return 1;  // a rerun of a finished run only re-exports

  // What ships: F16 weights, scored as they are.
  RoundToHalf(net.parameters());
  net.Freeze();
  const JsonValue metrics = AccuracyMetrics(**reward, run, absl::GetFlag(FLAGS_reward_metric_pairs));
  const std::string pack = absl::GetFlag(FLAGS_pack);
  if (absl::Status s = (*reward)->Save(pack, run.key, TrainingJson(run, state, device), metrics); !s.ok()) {
    Fail(absl::StrCat("saving to ", pack, ": ", s.message()));
    return 1;
  }
  if (absl::Status s = WriteLossFiles(run, state); !s.ok()) {
    Fail(absl::StrCat("loss curve: ", s.message()));
    return 1;
  }
  std::printf("train-reward %s: done, %lld steps in %.0f s (%.2f steps/s); wrote %s/%s.safetensors; metrics %s\n",
              run.key.c_str(), static_cast<long long>(state.step), state.wall_seconds,
              state.wall_seconds > 0 ? state.step / state.wall_seconds : 0.0, pack.c_str(), run.key.c_str(),
              metrics.Dump().c_str());
  return 0;
}

PSD3D_TINYWORLD_COMMAND("train-reward",
                        "trains the tiny reward (--reward_key=reward) or the evaluation reward (reward_eval) on fresh "
                        "preference pairs",
                        TrainReward);

}  // namespace
}  // namespace psd3d::tinyworld
