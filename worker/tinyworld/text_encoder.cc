#include "worker/tinyworld/text_encoder.h"

#include "worker/tinyworld/nn_blocks.h"

#include <string>
#include <vector>

#include <torch/nn.h>

#include "absl/strings/str_cat.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::tinyworld {
namespace {

// One pre-norm transformer layer: x + Attn(LN(x)), then x + MLP(LN(x)).
struct EncoderLayer : torch::nn::Module {
  EncoderLayer(int64_t dim, int64_t heads, int64_t mlp_dim) : heads(heads) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    fc1 = register_module("fc1", torch::nn::Linear(dim, mlp_dim));
    fc2 = register_module("fc2", torch::nn::Linear(mlp_dim, dim));
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = x + proj->forward(SelfAttention(qkv->forward(norm1->forward(x)), heads));
    return h + fc2->forward(at::gelu(fc1->forward(norm2->forward(h))));
  }

  int64_t heads;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};

}  // namespace

struct TextEncoder::Impl : torch::nn::Module {
  explicit Impl(const TextEncoderConfig& c) {
    token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.dim));
    positions = register_parameter("positions", at::zeros({c.max_length, c.dim}));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) {
      auto layer = std::make_shared<EncoderLayer>(c.dim, c.heads, c.mlp_dim);
      layers->push_back(layer);
      typed_layers.push_back(layer);
    }
    final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
  }

  at::Tensor forward(const at::Tensor& ids) {
    at::Tensor h = token_embedding->forward(ids) + positions.unsqueeze(0);
    for (const auto& layer : typed_layers) h = layer->forward(h);
    return final_norm->forward(h);
  }

  torch::nn::Embedding token_embedding{nullptr};
  at::Tensor positions;
  torch::nn::ModuleList layers{nullptr};
  std::vector<std::shared_ptr<EncoderLayer>> typed_layers;
  torch::nn::LayerNorm final_norm{nullptr};
};

absl::Status ValidateTextEncoderConfig(const TextEncoderConfig& c) {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("text encoder config: ", what));
  };
  if (c.vocab_size < 4) return bad(absl::StrCat("vocab_size ", c.vocab_size, " must be ≥ 4"));
  if (c.max_length < 3) return bad(absl::StrCat("max_length ", c.max_length, " must be ≥ 3"));
  if (c.dim < 1 || c.heads < 1 || c.dim % c.heads != 0) {
    return bad(absl::StrCat("dim ", c.dim, " must be a positive multiple of heads ", c.heads));
  }
  if (c.layers < 0) return bad(absl::StrCat("layers ", c.layers, " must be ≥ 0"));
  if (c.mlp_dim < 1) return bad(absl::StrCat("mlp_dim ", c.mlp_dim, " must be ≥ 1"));
  return absl::OkStatus();
}

JsonValue TextEncoderConfigToJson(const TextEncoderConfig& c) {
  JsonValue j = JsonValue::Object();
  j.Set("vocab_size", JsonValue::Int(c.vocab_size));
  j.Set("max_length", JsonValue::Int(c.max_length));
  j.Set("dim", JsonValue::Int(c.dim));
  j.Set("layers", JsonValue::Int(c.layers));
  j.Set("heads", JsonValue::Int(c.heads));
  j.Set("mlp_dim", JsonValue::Int(c.mlp_dim));
  return j;
}

absl::StatusOr<TextEncoderConfig> TextEncoderConfigFromJson(const JsonValue& j) {
  TextEncoderConfig c;
  const std::initializer_list<std::pair<const char*, int64_t*>> fields = {
      {"vocab_size", &c.vocab_size}, {"max_length", &c.max_length}, {"dim", &c.dim},
      {"layers", &c.layers},         {"heads", &c.heads},           {"mlp_dim", &c.mlp_dim}};
  for (const auto& [key, field] : fields) {
    absl::StatusOr<int64_t> v = JsonInt(j, key);
    if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("text encoder config: ", v.status().message()));
    *field = *v;
  }
  absl::Status valid = ValidateTextEncoderConfig(c);
  if (!valid.ok()) return valid;
  return c;
}

TextEncoder::TextEncoder(const TextEncoderConfig& config, uint64_t seed, const at::Device& device) : config_(config) {
  absl::Status valid = ValidateTextEncoderConfig(config);
  TORCH_CHECK(valid.ok(), valid.ToString());
  impl_ = std::make_shared<Impl>(config);
  InitWeights(*impl_, seed);
  impl_->to(device);
}

TextEncoder::~TextEncoder() = default;
TextEncoder::TextEncoder(TextEncoder&&) noexcept = default;
TextEncoder& TextEncoder::operator=(TextEncoder&&) noexcept = default;

at::Tensor TextEncoder::Forward(const at::Tensor& ids) const {
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) == config_.max_length && ids.scalar_type() == at::kLong,
              "TextEncoder: ids must be [B, ", config_.max_length, "] int64, got ", ids.sizes());
  return impl_->forward(ids.to(impl_->positions.device()));
}

std::shared_ptr<torch::nn::Module> TextEncoder::module() const { return impl_; }

}  // namespace psd3d::tinyworld
