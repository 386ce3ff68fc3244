// The triangle mesh passed between DMTet extraction, mesh ops, rendering, texture baking and export.
// Conventions (docs/engine.md): world space is right-handed and y-up, the same as glTF, so export
// writes positions unchanged; faces are counter-clockwise seen from outside (outward normals).
#pragma once

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace psd3d {

struct Mesh {
  at::Tensor vertices;  // [V,3] float32
  at::Tensor faces;     // [F,3] int64 vertex indices, CCW seen from outside
  // Optional attributes (undefined tensors when absent).
  at::Tensor colors;   // [V,3] float32 sRGB in [0,1]
  at::Tensor uvs;      // [V,2] float32, glTF convention: (0,0) is the texture's top-left texel corner
  at::Tensor texture;  // [H,W,3] float32 sRGB in [0,1], row 0 at the top

  int64_t num_vertices() const { return vertices.defined() ? vertices.size(0) : 0; }
  int64_t num_faces() const { return faces.defined() ? faces.size(0) : 0; }
};

// OK when shapes and dtypes match the contract above, indices are in range and no value is NaN or
// infinite; otherwise INVALID_ARGUMENT saying what is wrong (e.g. "mesh: 3 vertices have NaN
// coordinates"). Every exporter and consumer of external meshes calls this first.
absl::Status ValidateMesh(const Mesh& mesh);

}  // namespace psd3d
