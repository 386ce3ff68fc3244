#include "worker/tinyworld/tiny_prior.h"

#include <filesystem>
#include <utility>
#include <vector>

#include <c10/core/GradMode.h>
#include <torch/nn/module.h>

#include "absl/strings/str_cat.h"
#include "worker/formats/safetensors.h"
#include "worker/tinyworld/module_io.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::tinyworld {
namespace {

constexpr int64_t kScheduleSteps = 1000;
constexpr double kBetaStart = 1e-4, kBetaEnd = 0.02;

absl::Status Annotate(const absl::Status& s, const std::string& where) {
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

const JsonValue* FindObject(const JsonValue& j, const char* key) {
  const JsonValue* v = j.is_object() ? j.Find(key) : nullptr;
  return v != nullptr && v->is_object() ? v : nullptr;
}

absl::StatusOr<std::vector<std::string>> ReadVocabulary(const JsonValue& entry) {
  const JsonValue* vocab = entry.is_object() ? entry.Find("vocabulary") : nullptr;
  if (vocab == nullptr || !vocab->is_array()) return absl::InvalidArgumentError("'vocabulary' must be an array");
  std::vector<std::string> words;
  for (const JsonValue& w : vocab->items()) {
    if (!w.is_string()) return absl::InvalidArgumentError("'vocabulary' must hold strings");
    words.push_back(w.text());
  }
  return words;
}

absl::StatusOr<NoiseSchedule> ReadSchedule(const JsonValue& entry) {
  const JsonValue* s = FindObject(entry, "schedule");
  if (s == nullptr) return absl::InvalidArgumentError("'schedule' must be an object");
  absl::StatusOr<std::string> type = JsonString(*s, "type");
  absl::StatusOr<int64_t> steps = JsonInt(*s, "steps");
  absl::StatusOr<double> start = JsonDouble(*s, "beta_start"), end = JsonDouble(*s, "beta_end");
  for (const absl::Status& st : {type.status(), steps.status(), start.status(), end.status()}) {
    if (!st.ok()) return Annotate(st, "schedule");
  }
  if (*type != "linear") return absl::InvalidArgumentError(absl::StrCat("schedule type '", *type, "' is not 'linear'"));
  if (*steps < 2 || !(0 < *start && *start < *end && *end < 1)) {
    return absl::InvalidArgumentError("schedule: need steps ≥ 2 and 0 < beta_start < beta_end < 1");
  }
  return NoiseSchedule::Linear(*steps, *start, *end);
}

}  // namespace

// The root module: the text encoder and the UNet as submodules "text" and "unet".
struct TinyPrior::Modules : torch::nn::Module {
  Modules(const TinyPriorConfig& c, uint64_t seed, const at::Device& device)
      : text(c.text, seed, device), unet(c.unet, seed + 0x9e3779b97f4a7c15ULL, device) {
    register_module("text", text.module());
    register_module("unet", unet.module());
  }
  TextEncoder text;
  UNet unet;
};

JsonValue TinyPriorConfigToJson(const TinyPriorConfig& config) {
  JsonValue j = JsonValue::Object();
  j.Set("text_encoder", TextEncoderConfigToJson(config.text));
  j.Set("unet", UNetConfigToJson(config.unet));
  return j;
}

absl::StatusOr<TinyPriorConfig> TinyPriorConfigFromJson(const JsonValue& architecture) {
  const JsonValue* text = FindObject(architecture, "text_encoder");
  const JsonValue* unet = FindObject(architecture, "unet");
  if (text == nullptr || unet == nullptr) {
    return absl::InvalidArgumentError("prior architecture needs objects 'text_encoder' and 'unet'");
  }
  TinyPriorConfig c;
  absl::StatusOr<TextEncoderConfig> t = TextEncoderConfigFromJson(*text);
  if (!t.ok()) return t.status();
  absl::StatusOr<UNetConfig> u = UNetConfigFromJson(*unet);
  if (!u.ok()) return u.status();
  c.text = *t;
  c.unet = *u;
  if (c.unet.context_dim != c.text.dim) {
    return absl::InvalidArgumentError(absl::StrCat("prior architecture: unet context_dim ", c.unet.context_dim,
                                                   " differs from the text encoder's dim ", c.text.dim));
  }
  return c;
}

TinyPrior::TinyPrior(const TinyPriorConfig& config, Tokenizer tokenizer, const at::Device& device, uint64_t seed,
                     std::string name)
    : config_(config),
      tokenizer_(std::move(tokenizer)),
      device_(device),
      name_(std::move(name)),
      schedule_(NoiseSchedule::Linear(kScheduleSteps, kBetaStart, kBetaEnd)),
      modules_(std::make_shared<Modules>(config, seed, device)) {}

TinyPrior::~TinyPrior() = default;

absl::StatusOr<std::unique_ptr<TinyPrior>> TinyPrior::Create(const TinyPriorConfig& config, const at::Device& device,
                                                             uint64_t seed) {
  const Tokenizer& tokenizer = Tokenizer::TinyWorld();
  TinyPriorConfig c = config;
  c.text.vocab_size = tokenizer.vocab_size();
  c.text.max_length = tokenizer.max_length();
  c.unet.context_dim = c.text.dim;
  for (const absl::Status& s : {ValidateTextEncoderConfig(c.text), ValidateUNetConfig(c.unet)}) {
    if (!s.ok()) return s;
  }
  return std::unique_ptr<TinyPrior>(new TinyPrior(c, tokenizer, device, seed, "tiny-prior (new)"));
}

absl::StatusOr<std::unique_ptr<TinyPrior>> TinyPrior::Load(const std::string& pack_dir, const at::Device& device) {
  absl::StatusOr<JsonValue> entry = ReadModelEntry(pack_dir, kPriorKey);
  if (!entry.ok()) return entry.status();
  const std::string where = absl::StrCat("prior of pack ", pack_dir);
  const JsonValue* architecture = FindObject(*entry, "architecture");
  if (architecture == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": 'architecture' missing"));
  absl::StatusOr<TinyPriorConfig> config = TinyPriorConfigFromJson(*architecture);
  if (!config.ok()) return Annotate(config.status(), where);
  absl::StatusOr<std::vector<std::string>> words = ReadVocabulary(*entry);
  if (!words.ok()) return Annotate(words.status(), where);
  absl::StatusOr<int64_t> max_length = JsonInt(*entry, "max_length");
  if (!max_length.ok()) return Annotate(max_length.status(), where);
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*words, *max_length);
  if (!tokenizer.ok()) return Annotate(tokenizer.status(), where);
  if (tokenizer->vocab_size() != config->text.vocab_size || tokenizer->max_length() != config->text.max_length) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": vocabulary (", tokenizer->vocab_size(), " ids, length ",
                                                   tokenizer->max_length(), ") does not match the text encoder"));
  }
  absl::StatusOr<NoiseSchedule> schedule = ReadSchedule(*entry);
  if (!schedule.ok()) return Annotate(schedule.status(), where);
  absl::StatusOr<std::string> weights = JsonString(*entry, "weights");
  if (!weights.ok()) return Annotate(weights.status(), where);
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors((std::filesystem::path(pack_dir) / *weights).string());
  if (!file.ok()) return Annotate(file.status(), where);

  std::unique_ptr<TinyPrior> prior(
      new TinyPrior(*config, *std::move(tokenizer), device, /*seed=*/0, absl::StrCat("tiny-prior@", pack_dir)));
  prior->schedule_ = *std::move(schedule);
  absl::Status loaded = LoadModuleTensors(*prior->modules_, file->tensors);
  if (!loaded.ok()) return Annotate(loaded, where);
  prior->SetTrainable(false);
  prior->modules_->eval();
  return prior;
}

absl::StatusOr<at::Tensor> TinyPrior::EncodePrompt(const std::string& prompt) {
  absl::StatusOr<std::vector<int64_t>> ids = tokenizer_.Encode(prompt);
  if (!ids.ok()) return ids.status();
  c10::NoGradGuard no_grad;
  at::Tensor t = at::tensor(*ids, at::kLong).view({1, -1});
  return modules_->text.Forward(t);
}

at::Tensor TinyPrior::EmptyContext() {
  absl::StatusOr<at::Tensor> context = EncodePrompt("");
  TORCH_CHECK(context.ok(), "TinyPrior: the empty prompt must encode: ", context.status().ToString());
  return *context;
}

at::Tensor TinyPrior::PredictNoise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& context,
                                   const CameraBatch& cameras) {
  TORCH_CHECK(x_t.dim() == 4 && cameras.size() == x_t.size(0), "TinyPrior: need one camera per x_t, got ",
              cameras.size(), " for ", x_t.sizes());
  return modules_->unet.Forward(x_t, t.to(device_), context, cameras.elevation.to(device_),
                                cameras.azimuth.to(device_));
}

at::Tensor TinyPrior::EncodeIds(const at::Tensor& ids) const { return modules_->text.Forward(ids); }

torch::nn::Module& TinyPrior::module() const { return *modules_; }

void TinyPrior::SetTrainable(bool trainable) {
  for (at::Tensor& p : modules_->parameters()) p.requires_grad_(trainable);
}

int64_t TinyPrior::NumParameters() const {
  int64_t n = 0;
  for (const at::Tensor& p : modules_->parameters()) n += p.numel();
  return n;
}

JsonValue TinyPrior::ManifestEntry() const {
  JsonValue entry = JsonValue::Object();
  entry.Set("weights", JsonValue::String(kPriorWeightsFile));
  entry.Set("architecture", TinyPriorConfigToJson(config_));
  JsonValue vocab = JsonValue::Array();
  for (const std::string& w : tokenizer_.words()) vocab.Push(JsonValue::String(w));
  entry.Set("vocabulary", std::move(vocab));
  entry.Set("max_length", JsonValue::Int(tokenizer_.max_length()));
  JsonValue schedule = JsonValue::Object();
  schedule.Set("type", JsonValue::String("linear"));
  schedule.Set("steps", JsonValue::Int(schedule_.num_steps()));
  schedule.Set("beta_start", JsonValue::Double(kBetaStart));
  schedule.Set("beta_end", JsonValue::Double(kBetaEnd));
  entry.Set("schedule", std::move(schedule));
  entry.Set("latents", JsonValue::String("pixels"));
  entry.Set("prediction", JsonValue::String("epsilon"));
  entry.Set("image_size", JsonValue::Int(config_.unet.image_size));
  entry.Set("parameters", JsonValue::Int(NumParameters()));
  return entry;
}

absl::Status TinyPrior::Save(const std::string& pack_dir, const JsonValue& training, const JsonValue& metrics,
                             at::ScalarType dtype) const {
  std::error_code ec;
  std::filesystem::create_directories(pack_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create pack folder ", pack_dir, ": ", ec.message()));
  const std::string path = (std::filesystem::path(pack_dir) / kPriorWeightsFile).string();
  absl::Status written = WriteSafetensors(path, ModuleTensors(*modules_, dtype), {{"model", "psd3d tiny prior"}});
  if (!written.ok()) return written;
  JsonValue entry = ManifestEntry();
  entry.Set("training", training);
  entry.Set("metrics", metrics);
  return WriteModelEntry(pack_dir, kPriorKey, entry);
}

}  // namespace psd3d::tinyworld
