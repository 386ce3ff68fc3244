#include "worker/tinyworld/unet.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/GradMode.h>
#include <torch/nn.h>

#include "absl/strings/str_cat.h"
#include "worker/tinyworld/pack.h"
#include "worker/tinyworld/nn_blocks.h"

namespace psd3d::tinyworld {
namespace {

namespace nn = torch::nn;

nn::GroupNorm Norm(int64_t groups, int64_t channels) { return nn::GroupNorm(nn::GroupNormOptions(groups, channels)); }
nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

void ZeroParameters(nn::Module& m) {
  c10::NoGradGuard no_grad;
  for (at::Tensor& p : m.parameters()) p.zero_();
}

// [B,C,H,W] → [B,H·W,C] and back.
at::Tensor ToTokens(const at::Tensor& x) { return x.flatten(2).transpose(1, 2); }
at::Tensor FromTokens(const at::Tensor& tokens, const at::IntArrayRef& shape) {
  return tokens.transpose(1, 2).reshape(shape);
}

struct ResBlock : nn::Module {
  ResBlock(int64_t in, int64_t out, int64_t embed_dim, int64_t groups) {
    norm1 = register_module("norm1", Norm(groups, in));
    conv1 = register_module("conv1", Conv(in, out, 3));
    emb_proj = register_module("emb_proj", nn::Linear(embed_dim, out));
    norm2 = register_module("norm2", Norm(groups, out));
    conv2 = register_module("conv2", Conv(out, out, 3));
    if (in != out) skip = register_module("skip", Conv(in, out, 1));
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& emb_silu) {
    at::Tensor h = conv1->forward(at::silu(norm1->forward(x)));
    h = h + emb_proj->forward(emb_silu).unsqueeze(-1).unsqueeze(-1);
    h = conv2->forward(at::silu(norm2->forward(h)));
    return (skip ? skip->forward(x) : x) + h;
  }

  void ZeroOutput() { ZeroParameters(*conv2); }

  nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  nn::Linear emb_proj{nullptr};
};

// Self-attention over the positions and/or cross-attention to the context, each a pre-norm residual.
struct AttentionBlock : nn::Module {
  AttentionBlock(int64_t channels, int64_t context_dim, int64_t heads, int64_t groups, bool self, bool cross)
      : heads(heads) {
    if (self) {
      self_norm = register_module("self_norm", Norm(groups, channels));
      self_qkv = register_module("self_qkv", nn::Linear(channels, 3 * channels));
      self_out = register_module("self_out", nn::Linear(channels, channels));
    }
    if (cross) {
      cross_norm = register_module("cross_norm", Norm(groups, channels));
      cross_q = register_module("cross_q", nn::Linear(channels, channels));
      cross_kv = register_module("cross_kv", nn::Linear(context_dim, 2 * channels));
      cross_out = register_module("cross_out", nn::Linear(channels, channels));
    }
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& context) {
    const at::IntArrayRef shape = x.sizes();
    at::Tensor tokens = ToTokens(x);
    if (self_qkv) {
      tokens = tokens + self_out->forward(SelfAttention(self_qkv->forward(ToTokens(self_norm->forward(x))), heads));
    }
    if (cross_q) {
      at::Tensor q = cross_q->forward(ToTokens(cross_norm->forward(FromTokens(tokens, shape))));
      std::vector<at::Tensor> kv = cross_kv->forward(context).chunk(2, -1);
      tokens = tokens + cross_out->forward(MultiHeadAttention(q, kv[0], kv[1], heads));
    }
    return FromTokens(tokens, shape);
  }

  void ZeroOutput() {
    if (self_out) ZeroParameters(*self_out);
    if (cross_out) ZeroParameters(*cross_out);
  }

  int64_t heads;
  nn::GroupNorm self_norm{nullptr}, cross_norm{nullptr};
  nn::Linear self_qkv{nullptr}, self_out{nullptr}, cross_q{nullptr}, cross_kv{nullptr}, cross_out{nullptr};
};

// A ResBlock followed by attention where the level has any.
struct Stage : nn::Module {
  Stage(int64_t in, int64_t out, int64_t side, const UNetConfig& c) {
    res = register_module("res", std::make_shared<ResBlock>(in, out, c.embed_dim, c.groups));
    const bool self = side <= c.self_attention_max_size, cross = side <= c.cross_attention_max_size;
    if (self || cross) {
      attn = register_module(
          "attn", std::make_shared<AttentionBlock>(out, c.context_dim, out / c.head_dim, c.groups, self, cross));
    }
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& emb_silu, const at::Tensor& context) {
    at::Tensor h = res->forward(x, emb_silu);
    return attn ? attn->forward(h, context) : h;
  }

  void ZeroOutput() {
    res->ZeroOutput();
    if (attn) attn->ZeroOutput();
  }

  std::shared_ptr<ResBlock> res;
  std::shared_ptr<AttentionBlock> attn;
};

struct Upsample : nn::Module {
  explicit Upsample(int64_t channels) { conv = register_module("conv", Conv(channels, channels, 3)); }
  at::Tensor forward(const at::Tensor& x) {
    const std::vector<int64_t> size = {2 * x.size(2), 2 * x.size(3)};
    return conv->forward(at::upsample_nearest2d(x, at::IntArrayRef(size)));
  }
  nn::Conv2d conv{nullptr};
};

nn::Sequential Mlp(int64_t in, int64_t width) {
  return nn::Sequential(nn::Linear(in, width), nn::SiLU(), nn::Linear(width, width));
}

// Registers `module` in `list` and keeps its typed pointer.
template <typename T>
void Append(nn::ModuleList& list, std::vector<std::shared_ptr<T>>& typed, std::shared_ptr<T> module) {
  list->push_back(module);
  typed.push_back(std::move(module));
}

}  // namespace

struct UNet::Impl : nn::Module {
  explicit Impl(const UNetConfig& c) : config(c) {
    const auto& ch = c.channels;
    const int64_t levels = static_cast<int64_t>(ch.size());
    time_mlp = register_module("time_mlp", Mlp(ch[0], c.embed_dim));
    camera_mlp = register_module("camera_mlp", Mlp(4, c.embed_dim));
    conv_in = register_module("conv_in", Conv(c.image_channels, ch[0], 3));
    down = register_module("down", nn::ModuleList());
    downsample = register_module("downsample", nn::ModuleList());
    up = register_module("up", nn::ModuleList());
    upsample = register_module("upsample", nn::ModuleList());

    std::vector<int64_t> skip_channels = {ch[0]};
    int64_t width = ch[0], side = c.image_size;
    for (int64_t level = 0; level < levels; ++level) {
      for (int64_t r = 0; r < c.res_blocks; ++r) {
        Append(down, down_stages, std::make_shared<Stage>(width, ch[level], side, c));
        width = ch[level];
        skip_channels.push_back(width);
      }
      if (level + 1 < levels) {
        auto conv = std::make_shared<nn::Conv2dImpl>(nn::Conv2dOptions(width, width, 3).stride(2).padding(1));
        Append(downsample, down_convs, conv);
        skip_channels.push_back(width);
        side /= 2;
      }
    }

    mid_res = register_module("mid_res", std::make_shared<ResBlock>(width, width, c.embed_dim, c.groups));
    mid_attn = register_module(
        "mid_attn", std::make_shared<AttentionBlock>(width, c.context_dim, width / c.head_dim, c.groups, true, true));

    for (int64_t level = levels - 1; level >= 0; --level) {
      for (int64_t r = 0; r <= c.res_blocks; ++r) {
        Append(up, up_stages, std::make_shared<Stage>(width + skip_channels.back(), ch[level], side, c));
        skip_channels.pop_back();
        width = ch[level];
      }
      if (level > 0) {
        Append(upsample, up_convs, std::make_shared<Upsample>(width));
        side *= 2;
      }
    }
    out_norm = register_module("out_norm", Norm(c.groups, width));
    out_conv = register_module("out_conv", Conv(width, c.image_channels, 3));
  }

  // Zero the last layer of every residual branch and the output (after InitWeights).
  void ZeroOutputs() {
    for (auto& s : down_stages) s->ZeroOutput();
    for (auto& s : up_stages) s->ZeroOutput();
    mid_res->ZeroOutput();
    mid_attn->ZeroOutput();
    ZeroParameters(*out_conv);
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& context, const at::Tensor& elevation,
                     const at::Tensor& azimuth) {
    at::Tensor camera = at::stack({elevation.sin(), elevation.cos(), azimuth.sin(), azimuth.cos()}, 1);
    at::Tensor emb = time_mlp->forward(TimestepFeatures(t, config.channels[0])) + camera_mlp->forward(camera);
    at::Tensor emb_silu = at::silu(emb);

    at::Tensor h = conv_in->forward(x);
    std::vector<at::Tensor> skips = {h};
    const size_t per_level = static_cast<size_t>(config.res_blocks);
    for (size_t i = 0; i < down_stages.size(); ++i) {
      h = down_stages[i]->forward(h, emb_silu, context);
      skips.push_back(h);
      const size_t level = i / per_level;
      if ((i + 1) % per_level == 0 && level < down_convs.size()) {
        h = down_convs[level]->forward(h);
        skips.push_back(h);
      }
    }
    h = mid_attn->forward(mid_res->forward(h, emb_silu), context);
    for (size_t i = 0; i < up_stages.size(); ++i) {
      h = up_stages[i]->forward(at::cat({h, skips.back()}, 1), emb_silu, context);
      skips.pop_back();
      const size_t k = i / (per_level + 1);
      if ((i + 1) % (per_level + 1) == 0 && k < up_convs.size()) h = up_convs[k]->forward(h);
    }
    return out_conv->forward(at::silu(out_norm->forward(h)));
  }

  UNetConfig config;
  nn::Sequential time_mlp{nullptr}, camera_mlp{nullptr};
  nn::Conv2d conv_in{nullptr}, out_conv{nullptr};
  nn::GroupNorm out_norm{nullptr};
  nn::ModuleList down{nullptr}, downsample{nullptr}, up{nullptr}, upsample{nullptr};
  std::vector<std::shared_ptr<Stage>> down_stages, up_stages;
  std::vector<std::shared_ptr<nn::Conv2dImpl>> down_convs;
  std::vector<std::shared_ptr<Upsample>> up_convs;
  std::shared_ptr<ResBlock> mid_res;
  std::shared_ptr<AttentionBlock> mid_attn;
};

absl::Status ValidateUNetConfig(const UNetConfig& c) {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(absl::StrCat("unet config: ", what)); };
  if (c.image_channels < 1) return bad("image_channels must be ≥ 1");
  if (c.channels.empty()) return bad("channels must name at least one level");
  if (c.res_blocks < 1) return bad(absl::StrCat("res_blocks ", c.res_blocks, " must be ≥ 1"));
  if (c.head_dim < 1 || c.context_dim < 1 || c.embed_dim < 1 || c.groups < 1) {
    return bad("head_dim, context_dim, embed_dim and groups must be ≥ 1");
  }
  const int64_t levels = static_cast<int64_t>(c.channels.size());
  if (levels > 8 || c.image_size < 1 || c.image_size % (int64_t{1} << (levels - 1)) != 0) {
    return bad(absl::StrCat("image_size ", c.image_size, " must be divisible by 2^", levels - 1));
  }
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t w = c.channels[level], side = c.image_size >> level;
    if (w < 1 || w % c.groups != 0) {
      return bad(absl::StrCat("width ", w, " must be a positive multiple of groups ", c.groups));
    }
    const bool attention = side <= c.self_attention_max_size || side <= c.cross_attention_max_size;
    if ((attention || level + 1 == levels) && w % c.head_dim != 0) {
      return bad(absl::StrCat("width ", w, " of a level with attention must be a multiple of head_dim ", c.head_dim));
    }
  }
  if (c.channels[0] % 2 != 0) return bad("channels[0] (the timestep feature width) must be even");
  return absl::OkStatus();
}

JsonValue UNetConfigToJson(const UNetConfig& c) {
  JsonValue j = JsonValue::Object();
  j.Set("image_channels", JsonValue::Int(c.image_channels));
  j.Set("image_size", JsonValue::Int(c.image_size));
  JsonValue channels = JsonValue::Array();
  for (int64_t w : c.channels) channels.Push(JsonValue::Int(w));
  j.Set("channels", std::move(channels));
  j.Set("res_blocks", JsonValue::Int(c.res_blocks));
  j.Set("self_attention_max_size", JsonValue::Int(c.self_attention_max_size));
  j.Set("cross_attention_max_size", JsonValue::Int(c.cross_attention_max_size));
  j.Set("head_dim", JsonValue::Int(c.head_dim));
  j.Set("context_dim", JsonValue::Int(c.context_dim));
  j.Set("embed_dim", JsonValue::Int(c.embed_dim));
  j.Set("groups", JsonValue::Int(c.groups));
  return j;
}

absl::StatusOr<UNetConfig> UNetConfigFromJson(const JsonValue& j) {
  UNetConfig c;
  const std::initializer_list<std::pair<const char*, int64_t*>> fields = {
      {"image_channels", &c.image_channels},
      {"image_size", &c.image_size},
      {"res_blocks", &c.res_blocks},
      {"self_attention_max_size", &c.self_attention_max_size},
      {"cross_attention_max_size", &c.cross_attention_max_size},
      {"head_dim", &c.head_dim},
      {"context_dim", &c.context_dim},
      {"embed_dim", &c.embed_dim},
      {"groups", &c.groups}};
  for (const auto& [key, field] : fields) {
    absl::StatusOr<int64_t> v = JsonInt(j, key);
    if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("unet config: ", v.status().message()));
    *field = *v;
  }
  const JsonValue* channels = j.is_object() ? j.Find("channels") : nullptr;
  if (channels == nullptr || !channels->is_array())
    return absl::InvalidArgumentError("unet config: 'channels' must be an array");
  c.channels.clear();
  for (const JsonValue& w : channels->items()) {
    std::optional<uint64_t> v = w.AsUint64();
    if (!v) return absl::InvalidArgumentError("unet config: 'channels' must hold non-negative integers");
    c.channels.push_back(static_cast<int64_t>(*v));
  }
  absl::Status valid = ValidateUNetConfig(c);
  if (!valid.ok()) return valid;
  return c;
}

UNet::UNet(const UNetConfig& config, uint64_t seed, const at::Device& device) : config_(config) {
  absl::Status valid = ValidateUNetConfig(config);
  TORCH_CHECK(valid.ok(), valid.ToString());
  impl_ = std::make_shared<Impl>(config);
  InitWeights(*impl_, seed);
  impl_->ZeroOutputs();
  impl_->to(device);
}

UNet::~UNet() = default;
UNet::UNet(UNet&&) noexcept = default;
UNet& UNet::operator=(UNet&&) noexcept = default;

at::Tensor UNet::Forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& context,
                         const at::Tensor& elevation, const at::Tensor& azimuth) const {
  const int64_t batch = x.size(0);
  TORCH_CHECK(x.dim() == 4 && x.size(1) == config_.image_channels && x.size(2) == config_.image_size &&
                  x.size(3) == config_.image_size,
              "UNet: x must be [B,", config_.image_channels, ",", config_.image_size, ",", config_.image_size,
              "], got ", x.sizes());
  TORCH_CHECK(t.dim() == 1 && t.size(0) == batch, "UNet: t must be [", batch, "], got ", t.sizes());
  TORCH_CHECK(context.dim() == 3 && (context.size(0) == batch || context.size(0) == 1) &&
                  context.size(2) == config_.context_dim,
              "UNet: context must be [", batch, " or 1, L, ", config_.context_dim, "], got ", context.sizes());
  TORCH_CHECK(elevation.dim() == 1 && elevation.size(0) == batch && azimuth.sizes() == elevation.sizes(),
              "UNet: elevation and azimuth must be [", batch, "]");
  return impl_->forward(x, t, context, elevation.to(x.scalar_type()), azimuth.to(x.scalar_type()));
}

std::shared_ptr<torch::nn::Module> UNet::module() const { return impl_; }

int64_t UNet::NumParameters() const {
  int64_t n = 0;
  for (const at::Tensor& p : impl_->parameters()) n += p.numel();
  return n;
}

at::Tensor TimestepFeatures(const at::Tensor& t, int64_t dim) {
  TORCH_CHECK(t.dim() == 1 && dim >= 2 && dim % 2 == 0, "TimestepFeatures: t [B], even dim ≥ 2");
  const int64_t half = dim / 2;
  at::Tensor freqs = at::exp(at::arange(half, t.options().dtype(at::kFloat)) * (-std::log(10000.0) / half));
  at::Tensor args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  return at::cat({args.cos(), args.sin()}, 1);
}

}  // namespace psd3d::tinyworld
