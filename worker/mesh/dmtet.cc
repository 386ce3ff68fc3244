#include "worker/mesh/dmtet.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "worker/mesh/marching_tets.h"

namespace psd3d {
namespace {

std::string ShapeString(const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : "undefined"; }

}  // namespace

DMTet::DMTet(const DMTetOptions& options, const at::Device& device)
    : options_(options), grid_(MakeTetGrid(options.resolution, options.half_extent, device)) {
  TORCH_CHECK(options.dtype == at::kFloat || options.dtype == at::kDouble, "DMTet: dtype must be float32 or float64");
  const auto opts = at::TensorOptions().dtype(options.dtype).device(device);
  sdf_ = at::zeros({grid_.num_vertices()}, opts).requires_grad_(true);
  deformation_ = at::zeros({grid_.num_vertices(), 3}, opts).requires_grad_(options.deformable);
}

absl::Status DMTet::Evaluate(const PointFunction& f, int64_t chunk, const char* what, at::Tensor* out) const {
  if (chunk < 1) return absl::InvalidArgumentError(absl::StrCat("DMTet: chunk must be positive, got ", chunk));
  c10::NoGradGuard no_grad;
  const at::Tensor points = grid_.vertices.to(options_.dtype);
  const int64_t n = points.size(0);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    at::Tensor v = f(points.narrow(0, start, len));
    if (!v.defined() || !((v.dim() == 1 && v.size(0) == len) || (v.dim() == 2 && v.size(0) == len && v.size(1) == 1))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DMTet: the ", what, " function must return [P] or [P,1] for P = ", len, " points, got ", ShapeString(v)));
    }
    if (!v.is_floating_point()) {
      return absl::InvalidArgumentError(
          absl::StrCat("DMTet: the ", what, " function must return floating point values"));
    }
    parts.push_back(v.reshape({-1}).to(sdf_.device(), options_.dtype));
  }
  at::Tensor values = at::cat(parts);
  const int64_t bad = (~at::isfinite(values)).sum().item<int64_t>();
  if (bad > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("DMTet: the ", what, " function gave ", bad, " NaN or infinite values"));
  }
  *out = values;
  return absl::OkStatus();
}

absl::Status DMTet::InitFromDensity(const PointFunction& density, const DensityInit& init) {
  if (init.smoothing < 0) return absl::InvalidArgumentError("DMTet::InitFromDensity: smoothing must be ≥ 0");
  if (!(init.softness >= 0 && std::isfinite(init.softness)))
    return absl::InvalidArgumentError("DMTet::InitFromDensity: softness must be finite and ≥ 0");
  if (init.softness > 0 && !(init.threshold > 0 && std::isfinite(init.threshold)))
    return absl::InvalidArgumentError("DMTet::InitFromDensity: a soft init needs a finite threshold > 0");
  at::Tensor d;
  if (absl::Status s = Evaluate(density, init.chunk, "density", &d); !s.ok()) return s;
  c10::NoGradGuard no_grad;
  // Graded in log density: a density's tails are exponential (softplus, exp and sigmoid activations), so
  // its logarithm is close to linear across a cell and so are the crossings it gives.
  const double floor = 1e-3 * init.threshold;
  at::Tensor sdf = init.softness > 0 ? at::tanh(at::log(init.threshold / d.clamp_min(floor)) / init.softness)
                                     : (init.threshold - d).clamp(-1.0, 1.0);
  const int64_t smoothing = init.smoothing;
  if (smoothing > 0) {
    // Vertex (i,j,k) has id i + (N+1)(j + (N+1)k): a [1,1,N+1,N+1,N+1] volume with x fastest. At the
    // border the filter averages only the vertices that exist.
    const int64_t side = grid_.resolution + 1;
    at::Tensor volume = sdf.reshape({1, 1, side, side, side});
    for (int64_t i = 0; i < smoothing; ++i)
      volume = at::avg_pool3d(volume, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false);
    sdf = volume.reshape({-1});
  }
  sdf_.copy_(sdf);
  deformation_.zero_();
  return absl::OkStatus();
}

absl::Status DMTet::InitFromSdf(const PointFunction& sdf_fn, int64_t chunk) {
  at::Tensor s;
  if (absl::Status st = Evaluate(sdf_fn, chunk, "sdf", &s); !st.ok()) return st;
  c10::NoGradGuard no_grad;
  sdf_.copy_(s);
  deformation_.zero_();
  return absl::OkStatus();
}

at::Tensor DMTet::Positions() const {
  const at::Tensor base = grid_.vertices.to(options_.dtype);
  if (!options_.deformable) return base;
  return base + at::tanh(deformation_) * (0.5 * grid_.spacing());
}

Mesh DMTet::Extract() const { return MarchingTets(Positions(), sdf_, grid_); }

std::vector<at::Tensor> DMTet::Parameters() const {
  if (options_.deformable) return {sdf_, deformation_};
  return {sdf_};
}

std::map<std::string, at::Tensor> DMTet::State() const {
  return {{"sdf", sdf_.detach()}, {"deformation", deformation_.detach()}};
}

absl::Status DMTet::LoadState(const std::map<std::string, at::Tensor>& state) {
  auto check = [&](const char* key, const at::Tensor& param) -> absl::Status {
    auto it = state.find(key);
    if (it == state.end()) return absl::InvalidArgumentError(absl::StrCat("DMTet state: missing \"", key, "\""));
    const at::Tensor& t = it->second;
    if (!t.defined() || t.sizes() != param.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat("DMTet state: \"", key, "\" must have shape ",
                                                     c10::str(param.sizes()), " (resolution ", options_.resolution,
                                                     "), got ", ShapeString(t)));
    }
    if (!t.is_floating_point() || !at::isfinite(t).all().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat("DMTet state: \"", key, "\" must be finite floating point values"));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check("sdf", sdf_); !s.ok()) return s;
  if (absl::Status s = check("deformation", deformation_); !s.ok()) return s;
  c10::NoGradGuard no_grad;
  sdf_.copy_(state.at("sdf"));
  deformation_.copy_(state.at("deformation"));
  return absl::OkStatus();
}

}  // namespace psd3d
