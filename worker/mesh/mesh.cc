#include "worker/mesh/mesh.h"

#include "absl/strings/str_cat.h"

namespace psd3d {
namespace {

absl::Status CheckFloat(const at::Tensor& t, const char* name, int64_t rows, int64_t cols, bool rows_fixed) {
  if (!t.defined()) return absl::OkStatus();
  if (t.dim() != 2 || t.size(1) != cols || (rows_fixed && t.size(0) != rows)) {
    return absl::InvalidArgumentError(absl::StrCat("mesh: ", name, " must be [", rows_fixed ? std::to_string(rows) : "N",
                                                   ",", cols, "], got shape ", c10::str(t.sizes())));
  }
  if (t.scalar_type() != at::kFloat) return absl::InvalidArgumentError(absl::StrCat("mesh: ", name, " must be float32"));
  const int64_t bad = (~at::isfinite(t)).any(1).sum().item<int64_t>();
  if (bad > 0) {
    return absl::InvalidArgumentError(absl::StrCat("mesh: ", bad, " ", name, " rows have NaN or infinite values"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMesh(const Mesh& m) {
  if (!m.vertices.defined() || !m.faces.defined()) return absl::InvalidArgumentError("mesh: vertices and faces are required");
  const int64_t v = m.vertices.dim() == 2 ? m.vertices.size(0) : -1;
  if (auto s = CheckFloat(m.vertices, "vertices", v, 3, false); !s.ok()) return s;
  if (m.faces.dim() != 2 || m.faces.size(1) != 3 || m.faces.scalar_type() != at::kLong) {
    return absl::InvalidArgumentError(absl::StrCat("mesh: faces must be [F,3] int64, got shape ", c10::str(m.faces.sizes())));
  }
  if (m.faces.numel() > 0) {
    const int64_t lo = m.faces.min().item<int64_t>(), hi = m.faces.max().item<int64_t>();
    if (lo < 0 || hi >= v) {
      return absl::InvalidArgumentError(absl::StrCat("mesh: face indices span [", lo, ",", hi, "] but there are ", v, " vertices"));
    }
  }
  if (auto s = CheckFloat(m.colors, "colors", v, 3, true); !s.ok()) return s;
  if (auto s = CheckFloat(m.uvs, "uvs", v, 2, true); !s.ok()) return s;
  if (m.texture.defined()) {
    if (!m.uvs.defined()) return absl::InvalidArgumentError("mesh: a texture needs uvs");
    if (m.texture.dim() != 3 || m.texture.size(2) != 3 || m.texture.scalar_type() != at::kFloat) {
      return absl::InvalidArgumentError(absl::StrCat("mesh: texture must be [H,W,3] float32, got ", c10::str(m.texture.sizes())));
    }
    if (!at::isfinite(m.texture).all().item<bool>()) return absl::InvalidArgumentError("mesh: texture has NaN or infinite texels");
  }
  return absl::OkStatus();
}

}  // namespace psd3d
