#include "worker/mesh/primitives.h"

#include <cmath>
#include <vector>

namespace psd3d {

Mesh LatLongSphere(int64_t rings, int64_t segments) {
  TORCH_CHECK(rings >= 2 && segments >= 3, "LatLongSphere: needs rings >= 2 and segments >= 3, got ", rings, ", ",
              segments);
  std::vector<float> v = {0.f, 1.f, 0.f};
  for (int64_t i = 1; i < rings; ++i) {
    const double th = M_PI * i / rings;
    for (int64_t j = 0; j < segments; ++j) {
      const double ph = 2 * M_PI * j / segments;
      v.insert(v.end(), {static_cast<float>(std::sin(th) * std::sin(ph)), static_cast<float>(std::cos(th)),
                         static_cast<float>(std::sin(th) * std::cos(ph))});
    }
  }
  v.insert(v.end(), {0.f, -1.f, 0.f});
  const int64_t south = static_cast<int64_t>(v.size() / 3) - 1;
  auto ring = [&](int64_t i, int64_t j) { return 1 + (i - 1) * segments + (j % segments); };
  std::vector<int64_t> f;
  for (int64_t j = 0; j < segments; ++j) {
    f.insert(f.end(), {0, ring(1, j), ring(1, j + 1), south, ring(rings - 1, j + 1), ring(rings - 1, j)});
    for (int64_t i = 1; i + 1 < rings; ++i) {
      f.insert(f.end(),
               {ring(i, j), ring(i + 1, j), ring(i + 1, j + 1), ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)});
    }
  }
  Mesh m;
  m.vertices = at::tensor(v).view({-1, 3});
  m.faces = at::tensor(f, at::kLong).view({-1, 3});
  return m;
}

}  // namespace psd3d
