// Multiresolution hash-grid encoding with tiny-cuda-nn's semantics (Müller et al., Instant-NGP), in
// pure LibTorch (the "twin": CPU, CI and the reference) and as a CUDA kernel (hash_grid.cu).
//
// Semantics, level l = 0..L-1 (tcnn's grid.h, reproduced bit for bit where float order allows):
//   scale_l = exp2f(l · log2f(per_level_scale)) · base_resolution − 1       (float32, as tcnn)
//   res_l   = ceil(scale_l) + 1                                              vertices per axis
//   size_l  = min(round_up(res_l³, 8), 2^log2_table_size)                    table rows of the level
//   pos     = scale_l · x + 0.5;  cell = floor(pos);  frac = pos − cell      (tcnn's half-cell offset)
//   vertex v = cell + {0,1}³ → row offset_l + index(v), where
//     index(v) = (v.x + v.y·res + v.z·res²) mod size_l            if res_l³ ≤ size_l ("dense" level)
//              = (v.x·1 ⊕ v.y·2654435761 ⊕ v.z·805459861) mod size_l   otherwise (uint32 products)
//   feature_l = Σ over the 8 vertices of trilinear weight · table[row]      ([F] per level)
// Output row n is [feature_0, …, feature_{L−1}] ([L·F], level-major like tcnn's output).
//
// Quirk kept from tcnn: with the half-cell offset the upper vertex can be res_l (one past the last),
// which dense levels alias into the next row/slice via the modulo; it is part of the semantics.
// Inputs are expected in [0,1]³; unlike tcnn both paths clamp to [0,1] (NaN counts as 0) so that an
// out-of-range point can never index out of bounds.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace psd3d {

// Defaults are threestudio's implicit-volume encoding (finest resolution 16 · 1.4473^15 ≈ 4096).
struct HashGridConfig {
  int levels = 16;
  int features_per_level = 2;  // 1, 2, 4 or 8 (tcnn's choices; the kernel is specialised for them)
  int log2_table_size = 19;    // at most 2^19 rows per level
  int base_resolution = 16;
  double per_level_scale = 1.447269237440378;  // 2^(8/15): 16 → 4096 over 16 levels
};

inline constexpr int kHashGridMaxLevels = 32;

// OK, or INVALID_ARGUMENT naming the bad field (levels 1..32, F in {1,2,4,8}, log2 size 1..26,
// base resolution ≥ 1, per-level scale ≥ 1, finest scale ≤ 2^20 so float positions stay meaningful).
absl::Status ValidateHashGridConfig(const HashGridConfig& config);

// One level of the table, as tcnn lays it out.
struct HashGridLevel {
  float scale = 0;         // scale_l (float32 as in tcnn, so both paths use the same value)
  int64_t resolution = 0;  // res_l
  int64_t offset = 0;      // first table row of the level (a multiple of 8 when sizes are)
  int64_t size = 0;        // rows of the level (the modulus of the index)
  bool dense = false;      // res_l³ ≤ size_l: direct indexing, no hash
};

struct HashGridLayout {
  std::vector<HashGridLevel> levels;
  int64_t total_params = 0;  // table rows; the table is [total_params, F]
  int features = 0;
  int64_t output_dim() const { return static_cast<int64_t>(levels.size()) * features; }
};

// Per-level scales, resolutions, offsets and sizes. TORCH_CHECKs that the config is valid.
HashGridLayout ComputeHashGridLayout(const HashGridConfig& config);

// tcnn's grid_index: the row within `level` (add level.offset for the table row) of vertex (x, y, z).
// The scalar reference for the tensor and kernel versions; coordinates are ≥ 0.
int64_t HashGridVertexIndex(const HashGridLevel& level, int64_t x, int64_t y, int64_t z);

// A fresh [total_params, F] float32 table, uniform in ±1e-4 as tcnn initialises it. Drawn on the CPU
// from `generator` and then moved, so the values do not depend on `device`.
at::Tensor InitHashGridTable(const HashGridConfig& config, at::Generator& generator,
                             const at::Device& device = at::kCPU);

// Encodes points x [N,3] (in [0,1]) with `table` [total_params, F] → [N, L·F], differentiable with
// respect to the table only: the gradient with respect to x is not provided (autograd receives an
// undefined gradient, i.e. zero; normals use finite differences instead). x and table share device
// and dtype (float32; float64 is accepted by the twin for gradient checks).
// Uses the CUDA kernel for float32 CUDA tensors when built with CUDA, otherwise the twin.
at::Tensor HashGridEncode(const at::Tensor& x, const at::Tensor& table, const HashGridConfig& config);

// The same function, always on the pure-LibTorch path (any device): the reference for the kernel.
at::Tensor HashGridEncodeTwin(const at::Tensor& x, const at::Tensor& table, const HashGridConfig& config);

// True when this build contains the CUDA kernels (PSD3D_WITH_CUDA).
bool HashGridHasCudaKernel();

}  // namespace psd3d
