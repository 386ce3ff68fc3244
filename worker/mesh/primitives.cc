#include "worker/mesh/primitives.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
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

namespace psd3d {
namespace {

using Vec3 = std::array<double, 3>;

// Accumulates disjoint patches into one mesh.
class MeshBuilder {
 public:
  int64_t Vertex(const Vec3& p) {
    for (double c : p) v_.push_back(static_cast<float>(c));
    return static_cast<int64_t>(v_.size() / 3) - 1;
  }
  void Triangle(int64_t a, int64_t b, int64_t c) { f_.insert(f_.end(), {a, b, c}); }
  // A planar polygon given CCW seen from outside, as a fan with its own vertices.
  void Polygon(const std::vector<Vec3>& corners) {
    const int64_t first = static_cast<int64_t>(v_.size() / 3);
    for (const Vec3& p : corners) Vertex(p);
    for (size_t i = 1; i + 1 < corners.size(); ++i) Triangle(first, first + i, first + i + 1);
  }
  // A (rows+1)×(cols+1) grid of points p(i, j), shared inside the patch; quads (i,j)-(i+1,j+1) split in
  // two. With `flip` false a quad is CCW seen from the side where (p(i+1,j) − p(i,j)) × (p(i,j+1) − p(i,j))
  // points.
  template <typename F>
  void Grid(int64_t rows, int64_t cols, F p, bool flip) {
    const int64_t first = static_cast<int64_t>(v_.size() / 3);
    for (int64_t i = 0; i <= rows; ++i)
      for (int64_t j = 0; j <= cols; ++j) Vertex(p(i, j));
    auto id = [&](int64_t i, int64_t j) { return first + i * (cols + 1) + j; };
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        if (!flip) {
          Triangle(id(i, j), id(i + 1, j), id(i + 1, j + 1));
          Triangle(id(i, j), id(i + 1, j + 1), id(i, j + 1));
        } else {
          Triangle(id(i, j), id(i + 1, j + 1), id(i + 1, j));
          Triangle(id(i, j), id(i, j + 1), id(i + 1, j + 1));
        }
      }
    }
  }
  Mesh Build() const {
    Mesh m;
    m.vertices = at::tensor(v_).view({-1, 3});
    m.faces = at::tensor(f_, at::kLong).view({-1, 3});
    return m;
  }

 private:
  std::vector<float> v_;
  std::vector<int64_t> f_;
};

// Point at height y, radius r, angle a around +y (0 on +z, 90° on +x: the cameras' azimuth convention).
Vec3 Around(double r, double a, double y) { return {r * std::sin(a), y, r * std::cos(a)}; }

// A flat disc at height y facing +y (up) or −y, as a fan of `segments` triangles with its own vertices.
void Disc(MeshBuilder& b, double r, double y, int64_t segments, bool up) {
  std::vector<Vec3> ring;
  for (int64_t j = 0; j < segments; ++j) ring.push_back(Around(r, 2 * M_PI * j / segments, y));
  // Increasing azimuth (+z toward +x) runs counter-clockwise seen from +y: the down-facing disc
  // reverses it.
  if (!up) std::reverse(ring.begin(), ring.end());
  b.Polygon(ring);
}

}  // namespace

Mesh CubeMesh() {
  const double h = 0.56;
  MeshBuilder b;
  for (int axis = 0; axis < 3; ++axis) {
    for (int sign : {-1, 1}) {
      // Two in-plane axes (u, v) with u × v = the outward normal, then corners CCW around it.
      const int u = (axis + 1) % 3, v = (axis + 2) % 3;
      std::vector<Vec3> corners;
      for (auto [su, sv] : {std::pair{-1, -1}, {1, -1}, {1, 1}, {-1, 1}}) {
        Vec3 p{};
        p[axis] = sign * h;
        p[u] = su * h * sign;
        p[v] = sv * h;
        corners.push_back(p);
      }
      b.Polygon(corners);
    }
  }
  return b.Build();
}

Mesh SphereMesh(int64_t segments) {
  TORCH_CHECK(segments >= 8, "SphereMesh: segments must be >= 8, got ", segments);
  Mesh m = LatLongSphere(segments / 2, segments);
  m.vertices = m.vertices * 0.9;
  return m;
}

Mesh CylinderMesh(int64_t segments) {
  TORCH_CHECK(segments >= 8, "CylinderMesh: segments must be >= 8, got ", segments);
  const double r = 0.62, h = 0.72;
  MeshBuilder b;
  // Side: i runs down (top to bottom), j around; (down) × (around) points outward.
  b.Grid(1, segments, [&](int64_t i, int64_t j) { return Around(r, 2 * M_PI * j / segments, i == 0 ? h : -h); },
         false);
  Disc(b, r, h, segments, true);
  Disc(b, r, -h, segments, false);
  return b.Build();
}

Mesh ConeMesh(int64_t segments) {
  TORCH_CHECK(segments >= 8, "ConeMesh: segments must be >= 8, got ", segments);
  const double r = 0.72, y0 = -0.62, apex = 0.85;
  MeshBuilder b;
  // Side: one triangle per segment, each with its own apex vertex (the apex has no single normal).
  for (int64_t j = 0; j < segments; ++j) {
    const int64_t top = b.Vertex({0, apex, 0});
    const int64_t a = b.Vertex(Around(r, 2 * M_PI * j / segments, y0));
    const int64_t c = b.Vertex(Around(r, 2 * M_PI * (j + 1) / segments, y0));
    b.Triangle(top, a, c);
  }
  Disc(b, r, y0, segments, false);
  return b.Build();
}

Mesh TorusMesh(int64_t segments) {
  TORCH_CHECK(segments >= 8, "TorusMesh: segments must be >= 8, got ", segments);
  const double ring = 0.66, tube = 0.28;
  const int64_t around_tube = std::max<int64_t>(8, segments / 2);
  MeshBuilder b;
  // i: angle around the tube (0 at the outer equator, then over the top), j: around the axis. The
  // seam vertices are duplicated, which leaves the normals smooth (same positions, same neighbours).
  b.Grid(around_tube, segments,
         [&](int64_t i, int64_t j) {
           const double t = 2 * M_PI * i / around_tube;
           return Around(ring + tube * std::cos(t), 2 * M_PI * j / segments, tube * std::sin(t));
         },
         true);
  return b.Build();
}

Mesh PyramidMesh() {
  const double h = 0.6, y0 = -0.5, apex = 0.85;
  const Vec3 top{0, apex, 0};
  // Base corners counter-clockwise seen from above (+y); the base faces down, so it takes them reversed.
  const std::vector<Vec3> base = {{h, y0, h}, {h, y0, -h}, {-h, y0, -h}, {-h, y0, h}};
  MeshBuilder b;
  b.Polygon({base.rbegin(), base.rend()});
  for (int k = 0; k < 4; ++k) b.Polygon({top, base[k], base[(k + 1) % 4]});
  return b.Build();
}

}  // namespace psd3d
