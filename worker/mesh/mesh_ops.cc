#include "worker/mesh/mesh_ops.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <numeric>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"

namespace psd3d {
namespace {

void CheckMesh(const Mesh& mesh, const char* who) {
  TORCH_CHECK(mesh.vertices.defined() && mesh.vertices.dim() == 2 && mesh.vertices.size(1) == 3, who,
              ": vertices must be [V,3]");
  TORCH_CHECK(
      mesh.faces.defined() && mesh.faces.dim() == 2 && mesh.faces.size(1) == 3 && mesh.faces.scalar_type() == at::kLong,
      who, ": faces must be [F,3] int64");
  TORCH_CHECK(mesh.faces.device() == mesh.vertices.device(), who, ": vertices and faces must be on one device");
}

at::Tensor Column(const at::Tensor& faces, int64_t k) { return faces.select(1, k).contiguous(); }

// [F,3] un-normalized face normals: (v1 − v0) × (v2 − v0), length = twice the face area.
at::Tensor FaceCross(const Mesh& mesh) {
  const at::Tensor v0 = mesh.vertices.index_select(0, Column(mesh.faces, 0));
  const at::Tensor v1 = mesh.vertices.index_select(0, Column(mesh.faces, 1));
  const at::Tensor v2 = mesh.vertices.index_select(0, Column(mesh.faces, 2));
  return at::linalg_cross(v1 - v0, v2 - v0, -1);
}

// x / |x| along the last dim, 0 where |x| is (almost) 0; the gradient stays finite everywhere.
at::Tensor SafeNormalize(const at::Tensor& x) {
  const at::Tensor sq = (x * x).sum(-1, /*keepdim=*/true);
  return x * at::rsqrt(sq.clamp_min(1e-30)) * (sq > 0);
}

// sqrt with a finite gradient at 0 (the "double where": no NaN from sqrt'(0) reaches the graph).
at::Tensor SafeSqrt(const at::Tensor& x) {
  const at::Tensor positive = x > 0;
  return at::where(positive, at::sqrt(at::where(positive, x, at::ones_like(x))), at::zeros_like(x));
}

// Unique undirected edges of the faces as (lo, hi) rows, sorted.
at::Tensor UniqueEdges(const at::Tensor& faces, int64_t num_vertices) {
  const at::Tensor a = faces.reshape({-1}), b = faces.roll(-1, 1).reshape({-1});
  const at::Tensor keys = at::minimum(a, b) * num_vertices + at::maximum(a, b);
  at::Tensor unique_keys = std::get<0>(at::_unique2(keys, /*sorted=*/true));
  return at::stack({unique_keys.div(num_vertices, "floor"), unique_keys.remainder(num_vertices)}, 1);
}

}  // namespace

at::Tensor FaceNormals(const Mesh& mesh) {
  CheckMesh(mesh, "FaceNormals");
  return SafeNormalize(FaceCross(mesh));
}

at::Tensor FaceAreas(const Mesh& mesh) {
  CheckMesh(mesh, "FaceAreas");
  const at::Tensor c = FaceCross(mesh);
  return 0.5 * SafeSqrt((c * c).sum(-1));
}

at::Tensor TotalArea(const Mesh& mesh) { return FaceAreas(mesh).sum(); }

at::Tensor VertexNormals(const Mesh& mesh) {
  CheckMesh(mesh, "VertexNormals");
  const at::Tensor c = FaceCross(mesh);  // area-weighted (×2) face normals
  at::Tensor sum = at::zeros_like(mesh.vertices);
  for (int64_t k = 0; k < 3; ++k) sum = sum.index_add(0, Column(mesh.faces, k), c);
  return SafeNormalize(sum);
}

EdgeFaces InteriorEdgeFaces(const Mesh& mesh) {
  CheckMesh(mesh, "InteriorEdgeFaces");
  c10::NoGradGuard no_grad;
  const int64_t num_v = mesh.vertices.size(0);
  const at::Tensor a = mesh.faces.reshape({-1}), b = mesh.faces.roll(-1, 1).reshape({-1});
  const at::Tensor keys = at::minimum(a, b) * num_v + at::maximum(a, b);  // [3F], half-edge i is on face i / 3
  at::Tensor sorted, order;
  std::tie(sorted, order) = keys.sort();
  at::Tensor unique_keys, counts;
  std::tie(unique_keys, std::ignore, counts) =
      at::unique_consecutive(sorted, /*return_inverse=*/false, /*return_counts=*/true);
  const at::Tensor starts = counts.cumsum(0) - counts;
  const at::Tensor pairs = at::nonzero(counts == 2).view({-1});
  const at::Tensor first = starts.index_select(0, pairs);
  const at::Tensor face_of = order.div(3, "floor");
  EdgeFaces out;
  const at::Tensor k = unique_keys.index_select(0, pairs);
  out.edges = at::stack({k.div(num_v, "floor"), k.remainder(num_v)}, 1);
  out.faces = at::stack({face_of.index_select(0, first), face_of.index_select(0, first + 1)}, 1);
  return out;
}

at::Tensor NormalConsistencyLoss(const Mesh& mesh) {
  const EdgeFaces ef = InteriorEdgeFaces(mesh);
  if (ef.faces.size(0) == 0) return (mesh.vertices * 0).sum();
  const at::Tensor n = FaceNormals(mesh);
  const at::Tensor n0 = n.index_select(0, Column(ef.faces, 0)), n1 = n.index_select(0, Column(ef.faces, 1));
  return (1 - (n0 * n1).sum(-1)).mean();
}

at::Tensor UniformLaplacian(const Mesh& mesh) {
  CheckMesh(mesh, "UniformLaplacian");
  const at::Tensor& v = mesh.vertices;
  const at::Tensor edges = UniqueEdges(mesh.faces, v.size(0));
  const at::Tensor lo = Column(edges, 0), hi = Column(edges, 1);
  at::Tensor degree = at::zeros({v.size(0)}, v.options());
  const at::Tensor ones = at::ones({edges.size(0)}, v.options());
  degree = degree.index_add(0, lo, ones).index_add(0, hi, ones).unsqueeze(1);
  const at::Tensor neighbour_sum =
      at::zeros_like(v).index_add(0, lo, v.index_select(0, hi)).index_add(0, hi, v.index_select(0, lo));
  return (v - neighbour_sum / degree.clamp_min(1)) * (degree > 0);
}

at::Tensor LaplacianLoss(const Mesh& mesh) {
  const at::Tensor d = UniformLaplacian(mesh);
  if (d.size(0) == 0) return (mesh.vertices * 0).sum();
  return (d * d).sum(-1).mean();
}

Components ConnectedComponents(const Mesh& mesh) {
  CheckMesh(mesh, "ConnectedComponents");
  // Union-find over vertices on the host: near-linear, and the face count is modest (≤ a few million).
  const at::Tensor faces = mesh.faces.detach().to(at::kCPU).contiguous();
  const int64_t num_f = faces.size(0);
  const int64_t* f = faces.data_ptr<int64_t>();
  std::vector<int64_t> parent(mesh.vertices.size(0));
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];  // path halving
    return x;
  };
  for (int64_t i = 0; i < 3 * num_f; ++i) {
    TORCH_CHECK(f[i] >= 0 && f[i] < static_cast<int64_t>(parent.size()),
                "ConnectedComponents: face index out of range");
  }
  for (int64_t i = 0; i < num_f; ++i) {
    const int64_t r0 = find(f[3 * i]);
    for (int k = 1; k < 3; ++k) {
      const int64_t r = find(f[3 * i + k]);
      if (r != r0) parent[r] = r0;
    }
  }
  Components out;
  std::vector<int64_t> id_of_root(parent.size(), -1), ids(num_f);
  for (int64_t i = 0; i < num_f; ++i) {
    int64_t& id = id_of_root[find(f[3 * i])];
    if (id < 0) id = out.count++;
    ids[i] = id;
  }
  out.face_component = at::tensor(ids, at::kLong).to(mesh.faces.device());
  return out;
}

Mesh SelectFaces(const Mesh& mesh, const at::Tensor& keep_faces) {
  CheckMesh(mesh, "SelectFaces");
  TORCH_CHECK(
      keep_faces.dim() == 1 && keep_faces.size(0) == mesh.faces.size(0) && keep_faces.scalar_type() == at::kBool,
      "SelectFaces: keep_faces must be [F] bool with F = ", mesh.faces.size(0));
  at::Tensor kept, used_ids, new_id;
  {
    c10::NoGradGuard no_grad;
    kept = mesh.faces.index_select(0, at::nonzero(keep_faces.to(mesh.faces.device())).view({-1}));
    const at::Tensor used = at::zeros({mesh.vertices.size(0)}, mesh.faces.options().dtype(at::kBool))
                                .index_fill_(0, kept.reshape({-1}), true);
    used_ids = at::nonzero(used).view({-1});
    new_id = used.to(at::kLong).cumsum(0) - 1;
  }
  Mesh out = mesh;
  out.vertices = mesh.vertices.index_select(0, used_ids);
  out.faces = new_id.index_select(0, kept.reshape({-1})).view({kept.size(0), 3});
  if (mesh.colors.defined()) out.colors = mesh.colors.index_select(0, used_ids);
  if (mesh.uvs.defined()) out.uvs = mesh.uvs.index_select(0, used_ids);
  return out;
}

Mesh RemoveFloaters(const Mesh& mesh, double min_area_fraction) {
  CheckMesh(mesh, "RemoveFloaters");
  if (mesh.faces.size(0) == 0) return mesh;
  const Components comps = ConnectedComponents(mesh);
  at::Tensor keep;
  {
    c10::NoGradGuard no_grad;
    const at::Tensor areas = FaceAreas(mesh).detach().to(at::kDouble);
    const at::Tensor comp_area = at::zeros({comps.count}, areas.options()).index_add(0, comps.face_component, areas);
    const at::Tensor keep_comp = comp_area >= comp_area.max() * min_area_fraction;
    keep = keep_comp.index_select(0, comps.face_component);
  }
  return SelectFaces(mesh, keep);
}

bool IsClosedAndConsistentlyOriented(const Mesh& mesh, std::string* why) {
  CheckMesh(mesh, "IsClosedAndConsistentlyOriented");
  auto fail = [&](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return false;
  };
  c10::NoGradGuard no_grad;
  const int64_t num_v = mesh.vertices.size(0);
  if (mesh.faces.size(0) == 0) return fail("no faces");
  const at::Tensor a = mesh.faces.reshape({-1}), b = mesh.faces.roll(-1, 1).reshape({-1});  // directed half-edges
  if (const int64_t degenerate = (a == b).sum().item<int64_t>(); degenerate > 0) {
    return fail(absl::StrCat(degenerate, " face edges join a vertex to itself"));
  }
  const at::Tensor keys = std::get<0>((a * num_v + b).sort());
  if (const int64_t dup =
          (keys.narrow(0, 1, keys.size(0) - 1) == keys.narrow(0, 0, keys.size(0) - 1)).sum().item<int64_t>();
      dup > 0) {
    return fail(absl::StrCat(dup, " directed edges occur more than once (flipped faces or non-manifold edges)"));
  }
  const at::Tensor reverse = b * num_v + a;
  if (const int64_t open = (~at::isin(reverse, keys)).sum().item<int64_t>(); open > 0) {
    return fail(absl::StrCat(open, " edges have no opposite half-edge (boundary or inconsistent orientation)"));
  }
  if (why != nullptr) why->clear();
  return true;
}

}  // namespace psd3d
