#include "worker/tinyworld/module_io.h"

#include <set>

#include <torch/nn/module.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include <c10/core/GradMode.h>

namespace psd3d::tinyworld {
namespace {

// Parameters and buffers by dotted name.
std::map<std::string, at::Tensor> Named(const torch::nn::Module& module) {
  std::map<std::string, at::Tensor> all;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) all.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) all.emplace(b.key(), b.value());
  return all;
}

}  // namespace

std::map<std::string, at::Tensor> ModuleTensors(const torch::nn::Module& module, at::ScalarType dtype) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : Named(module)) {
    at::Tensor d = t.detach();
    out.emplace(name, at::isFloatingType(d.scalar_type()) ? d.to(at::kCPU, dtype).contiguous() : d.cpu().contiguous());
  }
  return out;
}

absl::Status LoadModuleTensors(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
                               const std::string& prefix) {
  const std::map<std::string, at::Tensor> want = Named(module);
  const std::string p = prefix.empty() ? "" : prefix + ".";
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (!absl::StartsWith(name, p)) continue;
    const std::string local = name.substr(p.size());
    auto it = want.find(local);
    if (it == want.end()) return absl::InvalidArgumentError(absl::StrCat("weights: unexpected tensor '", name, "'"));
    if (it->second.sizes() != t.sizes())
      return absl::InvalidArgumentError(absl::StrCat("weights: tensor '", name, "' has shape ", c10::str(t.sizes()),
                                                     ", the architecture needs ", c10::str(it->second.sizes())));
    seen.insert(local);
  }
  for (const auto& [name, t] : want) {
    if (!seen.count(name)) return absl::InvalidArgumentError(absl::StrCat("weights: tensor '", p, name, "' is missing"));
  }
  c10::NoGradGuard no_grad;
  for (const auto& [name, t] : want) {
    at::Tensor dst = t;
    dst.copy_(tensors.at(p + name).to(dst.device(), dst.scalar_type()));
  }
  return absl::OkStatus();
}

std::map<std::string, at::Tensor> WithPrefix(const std::string& prefix, const std::map<std::string, at::Tensor>& tensors) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : tensors) out.emplace(prefix + "." + name, t);
  return out;
}

}  // namespace psd3d::tinyworld
