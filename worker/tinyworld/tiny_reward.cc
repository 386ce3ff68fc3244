#include "worker/tinyworld/tiny_reward.h"

#include <filesystem>
#include <utility>

#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"
#include "worker/formats/safetensors.h"
#include "worker/render/color_space.h"
#include "worker/tinyworld/module_io.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/scene_render.h"

namespace psd3d::tinyworld {
namespace {

absl::Status Prefixed(const absl::Status& s, const std::string& context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

JsonValue VocabularyJson(const Tokenizer& tokenizer) {
  JsonValue words = JsonValue::Array();
  for (const std::string& w : tokenizer.words()) words.Push(JsonValue::String(w));
  JsonValue v = JsonValue::Object();
  v.Set("words", std::move(words));
  v.Set("max_length", JsonValue::Int(tokenizer.max_length()));
  return v;
}

absl::StatusOr<Tokenizer> VocabularyFromJson(const JsonValue& entry) {
  const JsonValue* v = entry.Find("vocabulary");
  if (v == nullptr || !v->is_object()) return absl::InvalidArgumentError("missing object 'vocabulary'");
  const JsonValue* words = v->Find("words");
  if (words == nullptr || !words->is_array()) return absl::InvalidArgumentError("'vocabulary' has no array 'words'");
  std::vector<std::string> list;
  for (const JsonValue& w : words->items()) {
    if (!w.is_string()) return absl::InvalidArgumentError("'vocabulary.words' holds a non-string");
    list.push_back(w.text());
  }
  absl::StatusOr<int64_t> max_length = JsonInt(*v, "max_length");
  if (!max_length.ok()) return max_length.status();
  return Tokenizer::Create(std::move(list), *max_length);
}

absl::Status CheckTokenizerFits(const RewardNetConfig& config, const Tokenizer& tokenizer) {
  if (config.vocab_size != tokenizer.vocab_size() || config.max_length != tokenizer.max_length())
    return absl::InvalidArgumentError(absl::StrCat("architecture reads ", config.vocab_size, " ids of length ",
                                                   config.max_length, ", the vocabulary has ", tokenizer.vocab_size(),
                                                   " ids of length ", tokenizer.max_length()));
  return absl::OkStatus();
}

// Images [B,3,H,H] → [B,3,size,size]: box filter for multiples (the renders' own antialiasing), bilinear
// otherwise; both differentiable.
at::Tensor ToModelSize(const at::Tensor& images, int64_t size) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == images.size(3),
              "TinyReward: images must be [B,3,H,H], got ", images.sizes());
  const int64_t h = images.size(2);
  if (h == size) return images;
  if (h % size == 0) return at::avg_pool2d(images, h / size);
  return at::upsample_bilinear2d(images, std::vector<int64_t>{size, size}, /*align_corners=*/false);
}

// The first `count` judge cameras.
CameraBatch FirstJudgeViews(int count, const at::Device& device) {
  CameraBatch all = JudgeCameras(device);
  return WorldCameras(all.elevation.narrow(0, 0, count), all.azimuth.narrow(0, 0, count));
}

}  // namespace

TinyReward::TinyReward(RewardNet net, Tokenizer tokenizer, std::string name)
    : net_(std::move(net)), tokenizer_(std::move(tokenizer)), name_(std::move(name)) {}

absl::StatusOr<std::unique_ptr<TinyReward>> TinyReward::Create(RewardNetConfig config, const at::Device& device,
                                                               uint64_t seed) {
  const Tokenizer& tokenizer = Tokenizer::TinyWorld();
  if (config.vocab_size == 0) config.vocab_size = tokenizer.vocab_size();
  if (config.max_length == 0) config.max_length = tokenizer.max_length();
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (absl::Status s = CheckTokenizerFits(config, tokenizer); !s.ok()) return Prefixed(s, "tiny reward");
  RewardNet net(config, seed);
  net.to(device);
  return std::unique_ptr<TinyReward>(new TinyReward(std::move(net), tokenizer, absl::StrCat("tiny-reward(seed ", seed, ")")));
}

absl::StatusOr<std::unique_ptr<TinyReward>> TinyReward::Load(const std::string& pack_dir, const std::string& key,
                                                             const at::Device& device) {
  const std::string context = absl::StrCat("pack ", pack_dir, ", model '", key, "'");
  absl::StatusOr<JsonValue> entry = ReadModelEntry(pack_dir, key);
  if (!entry.ok()) return entry.status();
  const JsonValue* arch = entry->Find("architecture");
  if (arch == nullptr) return absl::InvalidArgumentError(absl::StrCat(context, ": missing 'architecture'"));
  absl::StatusOr<RewardNetConfig> config = RewardNetConfig::FromJson(*arch);
  if (!config.ok()) return Prefixed(config.status(), context);
  absl::StatusOr<Tokenizer> tokenizer = VocabularyFromJson(*entry);
  if (!tokenizer.ok()) return Prefixed(tokenizer.status(), context);
  if (absl::Status s = CheckTokenizerFits(*config, *tokenizer); !s.ok()) return Prefixed(s, context);
  absl::StatusOr<std::string> weights = JsonString(*entry, "weights");
  if (!weights.ok()) return Prefixed(weights.status(), context);
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(pack_dir + "/" + *weights);
  if (!file.ok()) return file.status();

  RewardNet net(*config, /*seed=*/0);
  if (absl::Status s = LoadModuleTensors(net.module(), file->tensors); !s.ok()) return Prefixed(s, context);
  net.to(device);
  net.Freeze();
  return std::unique_ptr<TinyReward>(
      new TinyReward(std::move(net), *std::move(tokenizer), absl::StrCat("tiny-reward:", key, "@", pack_dir)));
}

absl::Status TinyReward::Save(const std::string& pack_dir, const std::string& key, const JsonValue& training,
                              const JsonValue& metrics, at::ScalarType dtype) const {
  if (key.empty() || key.find('/') != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat("tiny reward: bad model key '", key, "'"));
  std::error_code ec;
  std::filesystem::create_directories(pack_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", pack_dir, ": ", ec.message()));
  const std::string file = key + ".safetensors";
  if (absl::Status s = WriteSafetensors(pack_dir + "/" + file, ModuleTensors(net_.module(), dtype),
                                        {{"model", "tiny-reward"}, {"key", key}});
      !s.ok())
    return s;
  JsonValue entry = JsonValue::Object();
  entry.Set("weights", JsonValue::String(file));
  entry.Set("kind", JsonValue::String("tiny-reward"));
  entry.Set("architecture", net_.config().ToJson());
  entry.Set("vocabulary", VocabularyJson(tokenizer_));
  entry.Set("parameters", JsonValue::Int(net_.num_parameters()));
  entry.Set("training", training);
  entry.Set("metrics", metrics);
  return WriteModelEntry(pack_dir, key, entry);
}

absl::StatusOr<at::Tensor> TinyReward::EncodePrompt(const std::string& prompt) {
  absl::StatusOr<std::vector<int64_t>> ids = tokenizer_.Encode(prompt);
  if (!ids.ok()) return Prefixed(ids.status(), name_);
  c10::NoGradGuard no_grad;
  return net_.EncodeText(at::tensor(*ids, at::kLong).view({1, -1}).to(net_.device()));
}

at::Tensor TinyReward::Score(const at::Tensor& images, const at::Tensor& prompt) {
  return net_.Score(ToModelSize(images, image_size()), prompt);
}

at::Tensor TinyReward::ScoreIds(const at::Tensor& images, const at::Tensor& ids) const {
  return net_.Score(ToModelSize(images, net_.config().image_size), net_.EncodeText(ids));
}

at::Tensor BradleyTerryLoss(const at::Tensor& winner_scores, const at::Tensor& loser_scores, double score_decay) {
  TORCH_CHECK(winner_scores.dim() == 1 && winner_scores.sizes() == loser_scores.sizes(),
              "BradleyTerryLoss: scores must be [B] each, got ", winner_scores.sizes(), " and ", loser_scores.sizes());
  at::Tensor nll = at::softplus(loser_scores - winner_scores).mean();  // −log σ(r_w − r_l)
  return nll + score_decay * 0.5 * (winner_scores.pow(2) + loser_scores.pow(2)).mean();
}

at::Tensor PairMargins(const TinyReward& reward, const PreferencePairs& pairs, int64_t chunk) {
  TORCH_CHECK(chunk > 0, "PairMargins: chunk must be positive");
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> margins;
  for (int64_t begin = 0; begin < pairs.size(); begin += chunk) {
    const int64_t n = std::min(chunk, pairs.size() - begin);
    at::Tensor ids = pairs.prompt_ids.narrow(0, begin, n);
    at::Tensor w = reward.ScoreIds(pairs.winners.narrow(0, begin, n), ids);
    at::Tensor l = reward.ScoreIds(pairs.losers.narrow(0, begin, n), ids);
    margins.push_back(w - l);
  }
  return at::cat(margins).to(at::kCPU, at::kFloat);
}

absl::StatusOr<GradientColorCheckResult> GradientColorCheck(RewardModel& reward, const Subject& subject,
                                                            Color wrong_color, const GradientColorCheckOptions& options) {
  if (wrong_color == subject.color)
    return absl::InvalidArgumentError(absl::StrCat("gradient color check: ", ColorName(wrong_color), " is the ",
                                                   SubjectName(subject), "'s own color"));
  if (options.steps < 1 || options.views < 1 || options.views > 8 || !(options.step_size > 0))
    return absl::InvalidArgumentError("gradient color check: need steps ≥ 1, views in [1,8], step_size > 0");
  absl::StatusOr<at::Tensor> prompt = reward.EncodePrompt(MakePrompt(subject));
  if (!prompt.ok()) return prompt.status();

  const at::Device device = reward.device();
  const CameraBatch cameras = FirstJudgeViews(options.views, device);
  std::vector<Scene> right(options.views, SubjectScene(subject, options.yaw));
  std::vector<Scene> wrong = right;
  for (Scene& s : wrong) s.objects[0].rgb = ColorRgb(wrong_color);
  RenderOptions render;  // the world's 64×64
  const at::Tensor reference = RenderScenes(right, cameras, render);
  at::Tensor image = RenderScenes(wrong, cameras, render);
  at::Tensor yaw = at::full({options.views}, options.yaw, at::TensorOptions().dtype(at::kFloat).device(device));
  // Pixels fully inside the silhouette: the object's own color, no background blended in.
  const at::Tensor mask = RenderSilhouettes(subject.shape, yaw, cameras, render).gt(0.999).to(at::kFloat).unsqueeze(1);
  const at::Tensor object_pixels = mask.sum({2, 3}).clamp_min(1);  // [V,1]
  auto mean_lab = [&](const at::Tensor& img) { return SrgbToLab((img * mask).sum({2, 3}) / object_pixels, 1); };
  const at::Tensor reference_lab = mean_lab(reference);
  auto delta_e = [&](const at::Tensor& img) { return DeltaE76(mean_lab(img), reference_lab, 1).mean().item<double>(); };

  GradientColorCheckResult result;
  result.delta_e_before = delta_e(image);
  c10::AutoGradMode grad_on(true);
  for (int step = 0; step < options.steps; ++step) {
    at::Tensor x = image.detach().requires_grad_(true);
    at::Tensor score = reward.Score(x, *prompt);
    if (step == 0) result.score_before = score.mean().item<double>();
    score.sum().backward();
    at::Tensor g = x.grad() * mask;
    at::Tensor rms = at::sqrt((g * g).sum() / (3 * mask.sum()).clamp_min(1)).clamp_min(1e-12);
    image = at::clamp(image.detach() + options.step_size * g / rms, 0, 1);
  }
  {
    c10::NoGradGuard no_grad;
    result.score_after = reward.Score(image, *prompt).mean().item<double>();
  }
  result.delta_e_after = delta_e(image);
  return result;
}

}  // namespace psd3d::tinyworld
