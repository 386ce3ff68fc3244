#include "worker/optim/adam.h"

#include <cmath>

#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"

namespace psd3d {
namespace {

std::string Key(const char* what, size_t g, size_t i) { return absl::StrCat(what, ".", g, ".", i); }

}  // namespace

Adam::Adam(std::vector<AdamGroup> groups, AdamOptions options) : groups_(std::move(groups)), options_(options) {
  for (const AdamGroup& g : groups_) {
    m_.emplace_back(g.params.size());
    v_.emplace_back(g.params.size());
  }
}

void Adam::Update(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, double lr) const {
  if (!m.defined()) {
    m = at::zeros_like(p);
    v = at::zeros_like(p);
  }
  m.mul_(options_.beta1).add_(g, 1 - options_.beta1);
  v.mul_(options_.beta2).addcmul_(g, g, 1 - options_.beta2);
  const double c1 = 1 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double c2 = 1 - std::pow(options_.beta2, static_cast<double>(steps_));
  p.sub_(lr / c1 * m / ((v / c2).sqrt() + options_.eps));
}

void Adam::Step() {
  std::vector<at::Tensor> grads;
  for (const AdamGroup& g : groups_)
    for (const at::Tensor& p : g.params) grads.push_back(p.grad());
  Step(grads);
}

void Adam::Step(const std::vector<at::Tensor>& grads) {
  c10::NoGradGuard no_grad;
  ++steps_;
  size_t k = 0;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < groups_[gi].params.size(); ++i, ++k) {
      TORCH_CHECK(k < grads.size(), "Adam: fewer gradients than parameters");
      if (!grads[k].defined()) continue;
      Update(groups_[gi].params[i], grads[k], m_[gi][i], v_[gi][i], groups_[gi].lr);
    }
  }
}

void Adam::ZeroGrad() {
  for (AdamGroup& g : groups_)
    for (at::Tensor& p : g.params)
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

std::map<std::string, at::Tensor> Adam::State() const {
  std::map<std::string, at::Tensor> s = {{"steps", at::tensor({steps_}, at::kLong)}};
  for (size_t g = 0; g < m_.size(); ++g) {
    for (size_t i = 0; i < m_[g].size(); ++i) {
      if (!m_[g][i].defined()) continue;
      s[Key("m", g, i)] = m_[g][i].detach().cpu();
      s[Key("v", g, i)] = v_[g][i].detach().cpu();
    }
  }
  return s;
}

absl::Status Adam::LoadState(const std::map<std::string, at::Tensor>& state) {
  auto steps = state.find("steps");
  if (steps == state.end() || steps->second.numel() != 1) return absl::InvalidArgumentError("adam state: 'steps' missing");
  auto m = m_, v = v_;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      auto mi = state.find(Key("m", g, i)), vi = state.find(Key("v", g, i));
      if ((mi == state.end()) != (vi == state.end()))
        return absl::InvalidArgumentError(absl::StrCat("adam state: only one moment of ", Key("", g, i)));
      if (mi == state.end()) {
        m[g][i] = v[g][i] = at::Tensor();
        continue;
      }
      const at::Tensor& p = groups_[g].params[i];
      if (mi->second.sizes() != p.sizes() || vi->second.sizes() != p.sizes())
        return absl::InvalidArgumentError(absl::StrCat("adam state: ", mi->first, " has the wrong shape"));
      m[g][i] = mi->second.to(p.device(), p.scalar_type()).clone();
      v[g][i] = vi->second.to(p.device(), p.scalar_type()).clone();
    }
  }
  m_ = std::move(m);
  v_ = std::move(v);
  steps_ = steps->second.item<int64_t>();
  return absl::OkStatus();
}

}  // namespace psd3d
