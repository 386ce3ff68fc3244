#include "worker/tinyworld/reward_net.h"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <torch/nn.h>

#include "absl/strings/str_cat.h"
#include "worker/render/color_space.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::tinyworld {
namespace {

constexpr char kType[] = "tiny-reward-cnn/1";
constexpr int64_t kHeadChannels = 16;  // channels of the spatially resolved head map
constexpr int64_t kStatistics = 9;     // ObjectStatistics' features

// Global statistics of the object's pixels, [B,9]: mean color in CIELAB (/100), color standard
// deviation, covered share of the image, centroid. The soft object mask (distance from the white
// background) carries no gradient, so the image gradient through this branch is the same for every
// object pixel: a smooth, low-frequency path from "the object's color" to the score, which the
// convolutions' high-frequency gradients alone do not guarantee.
at::Tensor ObjectStatistics(const at::Tensor& images, const at::Tensor& ramp) {
  at::Tensor mask;
  {
    c10::NoGradGuard no_grad;
    const at::Tensor d2 = (1 - images).pow(2).sum(1, /*keepdim=*/true);
    mask = 1 - at::exp(-d2 / (0.15 * 0.15));  // [B,1,S,S]: 0 on white, → 1 on colors
  }
  const at::Tensor area = mask.sum({2, 3}).clamp_min(1e-3);                         // [B,1]
  const at::Tensor mean = (images * mask).sum({2, 3}) / area;                        // [B,3]
  const at::Tensor var = ((images - mean.unsqueeze(-1).unsqueeze(-1)).pow(2) * mask).sum({2, 3}) / area;
  const int64_t s = images.size(2);
  const at::Tensor cx = (mask * ramp.view({1, 1, 1, s})).sum({2, 3}) / area;
  const at::Tensor cy = (mask * ramp.view({1, 1, s, 1})).sum({2, 3}) / area;
  return at::cat({SrgbToLab(mean.clamp(0, 1)) / 100, at::sqrt(var + 1e-6), area / (s * s), cx, cy}, 1);
}

// h·(1 + γ) + β with [γ, β] = film(t), per image and channel.
at::Tensor Film(const at::Tensor& h, const at::Tensor& gamma_beta) {
  std::vector<at::Tensor> gb = gamma_beta.chunk(2, 1);
  return h * (1 + gb[0].unsqueeze(-1).unsqueeze(-1)) + gb[1].unsqueeze(-1).unsqueeze(-1);
}

// One stage: a (strided) 3×3 convolution, then a residual 3×3 convolution, both FiLM-modulated.
struct StageImpl : torch::nn::Module {
  StageImpl(int64_t in, int64_t out, int64_t stride, int64_t text_dim)
      : conv_a(register_module("conv_a", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1)))),
        conv_b(register_module("conv_b", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1)))),
        film_a(register_module("film_a", torch::nn::Linear(text_dim, 2 * out))),
        film_b(register_module("film_b", torch::nn::Linear(text_dim, 2 * out))) {}

  at::Tensor forward(const at::Tensor& x, const at::Tensor& t) {
    at::Tensor y = at::silu(Film(conv_a->forward(x), film_a->forward(t)));
    return y + at::silu(Film(conv_b->forward(y), film_b->forward(t)));
  }

  torch::nn::Conv2d conv_a, conv_b;
  torch::nn::Linear film_a, film_b;
};
TORCH_MODULE(Stage);

struct NetImpl : torch::nn::Module {
  explicit NetImpl(const RewardNetConfig& c)
      : text_embed(register_module("text_embed", torch::nn::Embedding(c.vocab_size, c.text_dim))),
        text_fc1(register_module("text_fc1", torch::nn::Linear(c.text_dim, c.text_dim))),
        text_fc2(register_module("text_fc2", torch::nn::Linear(c.text_dim, c.text_dim))),
        stages(register_module("stages", torch::nn::ModuleList())),
        head_proj(register_module("head_proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(4 * c.width, kHeadChannels, 1)))),
        head_fc1(register_module(
            "head_fc1", torch::nn::Linear(kHeadChannels * (c.image_size / 16) * (c.image_size / 16) + 4 * c.width +
                                              kStatistics + c.text_dim,
                                          4 * c.width))),
        head_fc2(register_module("head_fc2", torch::nn::Linear(4 * c.width, 1))) {
    const int64_t w = c.width;
    const int64_t channels[5] = {w, 2 * w, 2 * w, 4 * w, 4 * w};
    int64_t in = 5;  // RGB and the two coordinate channels
    for (int i = 0; i < 5; ++i) {
      stages->push_back(Stage(in, channels[i], i == 0 ? 1 : 2, c.text_dim));
      in = channels[i];
    }
  }

  at::Tensor EncodeText(const at::Tensor& ids) {
    at::Tensor mask = ids.ne(0).to(at::kFloat).unsqueeze(-1);  // padding (id 0) does not count
    at::Tensor bag = (text_embed->forward(ids) * mask).sum(1) / mask.sum(1).clamp_min(1);
    return text_fc2->forward(at::silu(text_fc1->forward(bag)));
  }

  at::Tensor Score(const at::Tensor& images, const at::Tensor& text) {
    const int64_t b = images.size(0), s = images.size(2);
    at::Tensor t = text.size(0) == b ? text : text.expand({b, -1});
    at::Tensor ramp = at::linspace(-1, 1, s, images.options());
    const at::Tensor statistics = ObjectStatistics(images, ramp);
    at::Tensor h = at::cat({images * 2 - 1, ramp.view({1, 1, 1, s}).expand({b, 1, s, s}),
                            ramp.view({1, 1, s, 1}).expand({b, 1, s, s})},
                           1);
    for (const auto& stage : *stages) h = stage->as<StageImpl>()->forward(h, t);
    at::Tensor map = at::silu(head_proj->forward(h)).flatten(1);
    at::Tensor features = at::cat({map, h.mean({2, 3}), statistics, t}, 1);
    return head_fc2->forward(at::silu(head_fc1->forward(features))).squeeze(1);
  }

  torch::nn::Embedding text_embed;
  torch::nn::Linear text_fc1, text_fc2;
  torch::nn::ModuleList stages;
  torch::nn::Conv2d head_proj;
  torch::nn::Linear head_fc1, head_fc2;
};
TORCH_MODULE(Net);

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// LeCun-uniform weights (variance 1/fan_in), zero biases, zero FiLM (each stage starts as a plain
// convolution), a small last layer (scores start near 0); drawn from one generator, so the network
// depends on the seed alone.
void Initialize(torch::nn::Module& module, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  c10::NoGradGuard no_grad;
  for (auto& p : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = p.key();
    at::Tensor& v = p.value();
    const bool film = name.find(".film_") != std::string::npos;
    if (EndsWith(name, ".bias") || film) {
      v.zero_();
      continue;
    }
    double bound;
    if (name == "text_embed.weight") {
      bound = std::sqrt(3.0);  // unit-variance embeddings
    } else {
      const int64_t fan_in = v.numel() / v.size(0);
      bound = std::sqrt(3.0 / fan_in) * (name == "head_fc2.weight" ? 0.1 : 1.0);
    }
    v.copy_((at::rand(v.sizes(), gen, at::TensorOptions().dtype(at::kFloat)) * 2 - 1) * bound);
  }
}

}  // namespace

absl::Status RewardNetConfig::Validate() const {
  if (vocab_size < 4) return absl::InvalidArgumentError(absl::StrCat("reward net: vocab_size ", vocab_size, " < 4"));
  if (max_length < 3) return absl::InvalidArgumentError(absl::StrCat("reward net: max_length ", max_length, " < 3"));
  if (width < 1 || width > 512) return absl::InvalidArgumentError(absl::StrCat("reward net: width ", width, " outside [1,512]"));
  if (text_dim < 1 || text_dim > 1024)
    return absl::InvalidArgumentError(absl::StrCat("reward net: text_dim ", text_dim, " outside [1,1024]"));
  if (image_size < 16 || image_size % 16 != 0)
    return absl::InvalidArgumentError(absl::StrCat("reward net: image_size ", image_size, " is not a positive multiple of 16"));
  return absl::OkStatus();
}

JsonValue RewardNetConfig::ToJson() const {
  JsonValue j = JsonValue::Object();
  j.Set("type", JsonValue::String(kType));
  j.Set("vocab_size", JsonValue::Int(vocab_size));
  j.Set("max_length", JsonValue::Int(max_length));
  j.Set("width", JsonValue::Int(width));
  j.Set("text_dim", JsonValue::Int(text_dim));
  j.Set("image_size", JsonValue::Int(image_size));
  return j;
}

absl::StatusOr<RewardNetConfig> RewardNetConfig::FromJson(const JsonValue& json) {
  absl::StatusOr<std::string> type = JsonString(json, "type");
  if (!type.ok()) return type.status();
  if (*type != kType)
    return absl::InvalidArgumentError(absl::StrCat("reward net: architecture type '", *type, "', expected '", kType, "'"));
  RewardNetConfig c;
  for (auto [key, field] : {std::pair<const char*, int64_t*>{"vocab_size", &c.vocab_size}, {"max_length", &c.max_length},
                            {"width", &c.width}, {"text_dim", &c.text_dim}, {"image_size", &c.image_size}}) {
    absl::StatusOr<int64_t> v = JsonInt(json, key);
    if (!v.ok()) return v.status();
    *field = *v;
  }
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

struct RewardNet::Impl {
  RewardNetConfig config;
  Net net;
  explicit Impl(const RewardNetConfig& c) : config(c), net(c) {}
};

RewardNet::RewardNet(const RewardNetConfig& config, uint64_t seed) {
  const absl::Status valid = config.Validate();
  TORCH_CHECK(valid.ok(), valid.ToString());
  impl_ = std::make_unique<Impl>(config);
  Initialize(*impl_->net, seed);
}

RewardNet::~RewardNet() = default;
RewardNet::RewardNet(RewardNet&&) noexcept = default;
RewardNet& RewardNet::operator=(RewardNet&&) noexcept = default;

const RewardNetConfig& RewardNet::config() const { return impl_->config; }
torch::nn::Module& RewardNet::module() { return *impl_->net; }
const torch::nn::Module& RewardNet::module() const { return *impl_->net; }
std::vector<at::Tensor> RewardNet::parameters() const { return impl_->net->parameters(); }

int64_t RewardNet::num_parameters() const {
  int64_t n = 0;
  for (const at::Tensor& p : parameters()) n += p.numel();
  return n;
}

void RewardNet::to(const at::Device& device) { impl_->net->to(device); }
at::Device RewardNet::device() const { return impl_->net->text_embed->weight.device(); }

void RewardNet::Freeze() {
  for (at::Tensor& p : impl_->net->parameters()) p.requires_grad_(false);
  impl_->net->eval();
}

at::Tensor RewardNet::EncodeText(const at::Tensor& ids) const {
  TORCH_CHECK(ids.dim() == 2 && ids.scalar_type() == at::kLong, "RewardNet::EncodeText: ids must be [B,L] int64, got ",
              ids.sizes(), " ", ids.scalar_type());
  return impl_->net->EncodeText(ids);
}

at::Tensor RewardNet::Score(const at::Tensor& images, const at::Tensor& text) const {
  const int64_t s = impl_->config.image_size;
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == s && images.size(3) == s,
              "RewardNet::Score: images must be [B,3,", s, ",", s, "], got ", images.sizes());
  TORCH_CHECK(text.dim() == 2 && text.size(1) == impl_->config.text_dim &&
                  (text.size(0) == images.size(0) || text.size(0) == 1),
              "RewardNet::Score: text must be [B or 1,", impl_->config.text_dim, "], got ", text.sizes());
  return impl_->net->Score(images, text);
}

}  // namespace psd3d::tinyworld
