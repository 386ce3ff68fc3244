#include "worker/fields/nerf_field.h"

#include <c10/core/GradMode.h>

#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace psd3d {
namespace {

// A bias-free Linear weight [out, in], uniform in ±1/√in (torch.nn.Linear's default init).
at::Tensor LinearWeight(int64_t in, int64_t out, at::Generator& gen, const at::Device& device) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  at::Tensor w = (at::rand({out, in}, gen, at::TensorOptions(at::kFloat)) * 2 - 1) * bound;
  return w.to(device).requires_grad_(true);
}

// threestudio's VanillaMLP with one hidden layer: Linear → ReLU → Linear, no biases.
at::Tensor Mlp(const at::Tensor& x, const at::Tensor& w0, const at::Tensor& w1) {
  return at::linear(at::relu(at::linear(x, w0)), w1);
}

// The leading dims of points [...,3] with `last` appended (omitted when 0).
std::vector<int64_t> BatchShape(const at::Tensor& points, int64_t last) {
  std::vector<int64_t> shape(points.sizes().begin(), points.sizes().end() - 1);
  if (last > 0) shape.push_back(last);
  return shape;
}

}  // namespace

absl::Status ValidateNerfFieldConfig(const NerfFieldConfig& c) {
  if (absl::Status s = ValidateHashGridConfig(c.encoding); !s.ok()) return s;
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(c.radius)) return absl::InvalidArgumentError(absl::StrCat("nerf field: radius must be > 0, got ", c.radius));
  if (c.mlp_width < 1) return absl::InvalidArgumentError(absl::StrCat("nerf field: mlp_width must be >= 1, got ", c.mlp_width));
  if (!std::isfinite(c.blob_scale)) return absl::InvalidArgumentError("nerf field: blob_scale must be finite");
  if (!positive(c.blob_std)) {
    return absl::InvalidArgumentError(absl::StrCat("nerf field: blob_std must be > 0, got ", c.blob_std));
  }
  if (!positive(c.normal_eps)) {
    return absl::InvalidArgumentError(absl::StrCat("nerf field: normal_eps must be > 0, got ", c.normal_eps));
  }
  return absl::OkStatus();
}

NerfField::NerfField(const NerfFieldConfig& config, uint64_t seed, const at::Device& device) : config_(config) {
  const absl::Status status = ValidateNerfFieldConfig(config);
  TORCH_CHECK(status.ok(), std::string(status.message()));
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const int64_t in = ComputeHashGridLayout(config.encoding).output_dim();
  table_ = InitHashGridTable(config.encoding, gen, device).requires_grad_(true);
  density_w0_ = LinearWeight(in, config.mlp_width, gen, device);
  density_w1_ = LinearWeight(config.mlp_width, 1, gen, device);
  feature_w0_ = LinearWeight(in, config.mlp_width, gen, device);
  feature_w1_ = LinearWeight(config.mlp_width, 3, gen, device);
}

void NerfField::CheckPoints(const at::Tensor& points) const {
  TORCH_CHECK(points.dim() >= 1 && points.size(-1) == 3, "NerfField: points must be [...,3], got ", points.sizes());
  TORCH_CHECK(points.scalar_type() == at::kFloat, "NerfField: points must be float32, got ", points.scalar_type());
  TORCH_CHECK(points.device() == device(), "NerfField: points on ", points.device(), " but the field is on ",
              device());
}

at::Tensor NerfField::Encode(const at::Tensor& flat_points) const {
  const at::Tensor unit = (flat_points / config_.radius + 1.0) * 0.5;
  return HashGridEncode(unit, table_, config_.encoding);
}

at::Tensor NerfField::ActivatedDensity(const at::Tensor& flat_points, const at::Tensor& enc) const {
  const at::Tensor raw = Mlp(enc, density_w0_, density_w1_).squeeze(-1);
  const at::Tensor blob = config_.blob_scale * (1.0 - flat_points.norm(2, -1) / config_.blob_std);
  return at::softplus(raw + blob);
}

FieldSample NerfField::Forward(const at::Tensor& points) const {
  CheckPoints(points);
  const at::Tensor flat = points.reshape({-1, 3});
  const at::Tensor enc = Encode(flat);
  FieldSample sample;
  sample.density = ActivatedDensity(flat, enc).view(BatchShape(points, 0));
  sample.albedo = at::sigmoid(Mlp(enc, feature_w0_, feature_w1_)).view(BatchShape(points, 3));
  return sample;
}

at::Tensor NerfField::Density(const at::Tensor& points) const {
  CheckPoints(points);
  const at::Tensor flat = points.reshape({-1, 3});
  return ActivatedDensity(flat, Encode(flat)).view(BatchShape(points, 0));
}

at::Tensor NerfField::Albedo(const at::Tensor& points) const {
  CheckPoints(points);
  const at::Tensor enc = Encode(points.reshape({-1, 3}));
  return at::sigmoid(Mlp(enc, feature_w0_, feature_w1_)).view(BatchShape(points, 3));
}

at::Tensor NerfField::Normals(const at::Tensor& points) const {
  CheckPoints(points);
  const at::Tensor flat = points.reshape({-1, 3});
  const int64_t m = flat.size(0);
  // Offsets ±eps along x, y, z (in that order); shifted points stay inside the field like threestudio's.
  const at::Tensor eye = at::eye(3, flat.options());
  const at::Tensor offsets = at::cat({eye, -eye}, 1).view({6, 3}) * config_.normal_eps;
  const at::Tensor shifted = (flat.unsqueeze(1) + offsets).clamp(-config_.radius, config_.radius);  // [M,6,3]
  const at::Tensor d = Density(shifted.reshape({-1, 3})).view({m, 3, 2});
  const at::Tensor grad = (d.select(2, 0) - d.select(2, 1)) * (0.5 / config_.normal_eps);  // [M,3]
  const at::Tensor normal = -grad / grad.norm(2, -1, true).clamp_min(1e-12);
  return normal.view(BatchShape(points, 3));
}

NerfField::ParameterGroups NerfField::Parameters() const {
  return {{table_}, {density_w0_, density_w1_, feature_w0_, feature_w1_}};
}

std::vector<std::pair<std::string, at::Tensor>> NerfField::Named() const {
  return {{"encoding.table", table_},
          {"density_network.0.weight", density_w0_},
          {"density_network.1.weight", density_w1_},
          {"feature_network.0.weight", feature_w0_},
          {"feature_network.1.weight", feature_w1_}};
}

std::map<std::string, at::Tensor> NerfField::StateDict() const {
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : Named()) state[name] = tensor.detach();
  return state;
}

absl::Status NerfField::LoadStateDict(const std::map<std::string, at::Tensor>& state) {
  const auto named = Named();
  std::set<std::string> known;
  for (const auto& [name, param] : named) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) return absl::InvalidArgumentError(absl::StrCat("nerf field state: missing '", name, "'"));
    const at::Tensor& t = it->second;
    if (!t.defined() || t.sizes() != param.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nerf field state: '", name, "' has shape ", t.defined() ? c10::str(t.sizes()) : "undefined",
          ", expected ", c10::str(param.sizes()), " (was it saved with another config?)"));
    }
    if (!at::isFloatingType(t.scalar_type())) {
      return absl::InvalidArgumentError(absl::StrCat("nerf field state: '", name, "' is not floating point"));
    }
    if (!at::isfinite(t).all().item<bool>()) {
      return absl::InvalidArgumentError(absl::StrCat("nerf field state: '", name, "' has NaN or infinite values"));
    }
  }
  for (const auto& [name, t] : state) {
    if (known.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("nerf field state: unexpected tensor '", name, "'"));
    }
  }
  const c10::NoGradGuard no_grad;  // at::NoGradGuard is gone in LibTorch 2.x
  for (const auto& [name, param] : named) {
    at::Tensor p = param;  // shares the parameter's storage
    p.copy_(state.at(name));
  }
  return absl::OkStatus();
}

}  // namespace psd3d
