#include "worker/fields/hash_grid.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "worker/cuda_build.h"
#include "worker/fields/hash_grid_cuda.h"

#ifdef PSD3D_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace psd3d {
namespace {

static_assert(kHashGridCudaMaxLevels == kHashGridMaxLevels, "hash_grid.h and hash_grid_cuda.h disagree");

constexpr int64_t kPrimeY = 2654435761;  // tcnn's coherent_prime_hash primes (x uses 1)
constexpr int64_t kPrimeZ = 805459861;
constexpr int64_t kUint32Mask = 0xffffffff;
constexpr double kMaxScale = 1 << 20;

// tcnn's grid_scale, in float32 like tcnn (so resolutions match its rounding exactly).
float LevelScale(int level, float log2_per_level_scale, int base_resolution) {
  return std::exp2(static_cast<float>(level) * log2_per_level_scale) * static_cast<float>(base_resolution) - 1.0f;
}

// ---- The pure-LibTorch twin ----

// Clamps to [0,1] with NaN → 0, exactly as the kernel's fminf(fmaxf(x, 0), 1).
at::Tensor SanitizePoints(const at::Tensor& x) { return at::nan_to_num(x, 0.0).clamp(0.0, 1.0); }

// The 8 vertices of each point's cell at one level: table rows [8,N] and trilinear weights [8,N].
// Corner c = 4z + 2y + x has offset bit d of c along axis d (the kernel's order). Points are the
// innermost dimension throughout so that every op runs over contiguous memory.
struct LevelCorners {
  at::Tensor rows;
  at::Tensor weights;
};

// Combines per-axis terms [2,N] (vertex offsets 0 and 1) into [8,N], x fastest.
template <typename Op>
at::Tensor OuterCombine(const at::Tensor& tx, const at::Tensor& ty, const at::Tensor& tz, Op op) {
  const int64_t n = tx.size(1);
  return op(op(tx.view({1, 1, 2, n}), ty.view({1, 2, 1, n})), tz.view({2, 1, 1, n})).view({8, n});
}

// index mod level.size, without a division: hashed levels have size 2^k (res³ > size forces the
// cap), and a dense index is at most res³ + res² + res (the upper vertex may be res), which is less
// than 2·size, so one conditional subtraction suffices.
at::Tensor ModLevelSize(const at::Tensor& index, const HashGridLevel& level) {
  if (!level.dense) return index.bitwise_and(level.size - 1);
  return index - (index >= level.size).to(at::kLong) * level.size;
}

// xt: sanitized points, transposed [3,N] float64; dtype: the table's.
LevelCorners CornersAt(const at::Tensor& xt, at::ScalarType dtype, const HashGridLevel& level) {
  // scale·x + 0.5 in float64, then rounded once to the table's dtype: for float32 the value of the
  // kernel's fmaf (the float32 product is exact in float64; only rare double roundings could differ).
  const at::Tensor pos = (xt * static_cast<double>(level.scale) + 0.5).to(dtype);
  const at::Tensor cell = at::floor(pos);
  const at::Tensor frac = pos - cell;                     // [3,N]
  const at::Tensor lo = cell.to(at::kLong);
  const at::Tensor coord = at::stack({lo, lo + 1}, 1);     // [3,2,N]: the two vertices per axis
  const at::Tensor w = at::stack({1.0 - frac, frac}, 1);   // [3,2,N]: their linear weights
  const at::Tensor tx = coord[0], ty = coord[1], tz = coord[2];
  at::Tensor index;
  if (level.dense) {
    index = OuterCombine(tx, ty * level.resolution, tz * (level.resolution * level.resolution),
                         [](const at::Tensor& a, const at::Tensor& b) { return a + b; });
  } else {  // uint32 products as in tcnn: mask the int64 products to 32 bits before the XOR
    index = OuterCombine(tx, (ty * kPrimeY).bitwise_and(kUint32Mask), (tz * kPrimeZ).bitwise_and(kUint32Mask),
                         [](const at::Tensor& a, const at::Tensor& b) { return a.bitwise_xor(b); });
  }
  // ((w_x · w_y) · w_z): the kernel's multiplication order.
  const at::Tensor weights =
      OuterCombine(w[0], w[1], w[2], [](const at::Tensor& a, const at::Tensor& b) { return a * b; });
  return {ModLevelSize(index, level) + level.offset, weights};
}

// Clamped points, transposed to [3,N] float64 (see CornersAt).
at::Tensor PreparePoints(const at::Tensor& x) { return SanitizePoints(x).to(at::kDouble).t().contiguous(); }

at::Tensor TwinForward(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  const int64_t n = x.size(0), f = layout.features;
  const at::Tensor xt = PreparePoints(x);
  std::vector<at::Tensor> per_level;
  for (const HashGridLevel& level : layout.levels) {
    const LevelCorners c = CornersAt(xt, table.scalar_type(), level);
    const at::Tensor feats = table.index_select(0, c.rows.reshape({-1})).view({8, n, f});
    per_level.push_back((feats * c.weights.unsqueeze(-1)).sum(0));  // [N,F]
  }
  return at::cat(per_level, 1);
}

at::Tensor TwinBackward(const at::Tensor& x, const at::Tensor& grad_out, const HashGridLayout& layout) {
  const int64_t f = layout.features;
  const at::Tensor xt = PreparePoints(x);
  at::Tensor grad_table = at::zeros({layout.total_params, f}, grad_out.options());
  for (size_t l = 0; l < layout.levels.size(); ++l) {
    const LevelCorners c = CornersAt(xt, grad_out.scalar_type(), layout.levels[l]);
    const at::Tensor g = grad_out.narrow(1, static_cast<int64_t>(l) * f, f);  // [N,F]
    grad_table.index_add_(0, c.rows.reshape({-1}), (c.weights.unsqueeze(-1) * g.unsqueeze(0)).reshape({-1, f}));
  }
  return grad_table;
}

// ---- The CUDA path ----

#ifdef PSD3D_WITH_CUDA
HashGridCudaLevels ToCudaLevels(const HashGridLayout& layout) {
  HashGridCudaLevels lv;
  lv.count = static_cast<int32_t>(layout.levels.size());
  lv.features = layout.features;
  for (size_t l = 0; l < layout.levels.size(); ++l) {
    const HashGridLevel& level = layout.levels[l];
    lv.scale[l] = level.scale;
    lv.resolution[l] = static_cast<uint32_t>(level.resolution);
    lv.size[l] = static_cast<uint32_t>(level.size);
    lv.dense[l] = level.dense ? 1 : 0;
    lv.offset[l] = level.offset;
  }
  return lv;
}

at::Tensor KernelForward(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), tc = table.contiguous();
  const int64_t n = x.size(0);
  at::Tensor out = at::empty({n, layout.output_dim()}, table.options());
  const char* err = LaunchHashGridForward(xc.data_ptr<float>(), n, tc.data_ptr<float>(), ToCudaLevels(layout),
                                          out.data_ptr<float>(), at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == nullptr, "HashGridEncode: CUDA forward kernel failed: ", err);
  return out;
}

at::Tensor KernelBackward(const at::Tensor& x, const at::Tensor& grad_out, const HashGridLayout& layout) {
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), gc = grad_out.contiguous();
  at::Tensor grad_table = at::zeros({layout.total_params, layout.features}, grad_out.options());
  const char* err = LaunchHashGridBackward(xc.data_ptr<float>(), x.size(0), gc.data_ptr<float>(),
                                           ToCudaLevels(layout), grad_table.data_ptr<float>(),
                                           at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == nullptr, "HashGridEncode: CUDA backward kernel failed: ", err);
  return grad_table;
}
#else
at::Tensor KernelForward(const at::Tensor&, const at::Tensor&, const HashGridLayout&) {
  TORCH_CHECK(false, "HashGridEncode: built without CUDA kernels");
}
at::Tensor KernelBackward(const at::Tensor&, const at::Tensor&, const HashGridLayout&) {
  TORCH_CHECK(false, "HashGridEncode: built without CUDA kernels");
}
#endif

// ---- Autograd ----

// Differentiable with respect to the table only. Nothing but x and the config is kept for backward:
// the corners are recomputed (as the kernel does) instead of holding [N, L, 8] indices in memory.
class HashGridFunction : public torch::autograd::Function<HashGridFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& table,
                            const HashGridConfig& config, const HashGridLayout& layout, bool use_kernel) {
    ctx->save_for_backward({x});
    ctx->saved_data["levels"] = static_cast<int64_t>(config.levels);
    ctx->saved_data["features"] = static_cast<int64_t>(config.features_per_level);
    ctx->saved_data["log2_table_size"] = static_cast<int64_t>(config.log2_table_size);
    ctx->saved_data["base_resolution"] = static_cast<int64_t>(config.base_resolution);
    ctx->saved_data["per_level_scale"] = config.per_level_scale;
    ctx->saved_data["use_kernel"] = use_kernel;
    return use_kernel ? KernelForward(x, table, layout) : TwinForward(x, table, layout);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    at::Tensor grad_table;
    if (ctx->needs_input_grad(1)) {  // tensor inputs are (x, table)
      HashGridConfig config;
      config.levels = static_cast<int>(ctx->saved_data["levels"].toInt());
      config.features_per_level = static_cast<int>(ctx->saved_data["features"].toInt());
      config.log2_table_size = static_cast<int>(ctx->saved_data["log2_table_size"].toInt());
      config.base_resolution = static_cast<int>(ctx->saved_data["base_resolution"].toInt());
      config.per_level_scale = ctx->saved_data["per_level_scale"].toDouble();
      const HashGridLayout layout = ComputeHashGridLayout(config);
      const at::Tensor x = ctx->get_saved_variables()[0];
      grad_table = ctx->saved_data["use_kernel"].toBool() ? KernelBackward(x, grads[0], layout)
                                                          : TwinBackward(x, grads[0], layout);
    }
    // One entry per forward argument: x (not provided), table, config, layout, use_kernel.
    return {at::Tensor(), grad_table, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void CheckInputs(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "HashGridEncode: x must be [N,3], got ", x.sizes());
  TORCH_CHECK(table.dim() == 2 && table.size(0) == layout.total_params && table.size(1) == layout.features,
              "HashGridEncode: table must be [", layout.total_params, ", ", layout.features,
              "] for this config, got ", table.sizes());
  TORCH_CHECK(table.scalar_type() == at::kFloat || table.scalar_type() == at::kDouble,
              "HashGridEncode: table must be float32 (float64 for gradient checks), got ", table.scalar_type());
  TORCH_CHECK(x.scalar_type() == table.scalar_type(), "HashGridEncode: x and table must share a dtype, got ",
              x.scalar_type(), " and ", table.scalar_type());
  TORCH_CHECK(x.device() == table.device(), "HashGridEncode: x and table must be on one device, got ", x.device(),
              " and ", table.device());
}

at::Tensor Encode(const at::Tensor& x, const at::Tensor& table, const HashGridConfig& config, bool allow_kernel) {
  const HashGridLayout layout = ComputeHashGridLayout(config);
  CheckInputs(x, table, layout);
  const bool use_kernel =
      allow_kernel && HashGridHasCudaKernel() && x.is_cuda() && table.scalar_type() == at::kFloat;
  return HashGridFunction::apply(x, table, config, layout, use_kernel);
}

}  // namespace

absl::Status ValidateHashGridConfig(const HashGridConfig& c) {
  auto bad = [](auto... parts) { return absl::InvalidArgumentError(absl::StrCat("hash grid: ", parts...)); };
  if (c.levels < 1 || c.levels > kHashGridMaxLevels) {
    return bad("levels must be in [1, ", kHashGridMaxLevels, "], got ", c.levels);
  }
  const int f = c.features_per_level;
  if (f != 1 && f != 2 && f != 4 && f != 8) return bad("features_per_level must be 1, 2, 4 or 8, got ", f);
  if (c.log2_table_size < 1 || c.log2_table_size > 26) {
    return bad("log2_table_size must be in [1, 26], got ", c.log2_table_size);
  }
  if (c.base_resolution < 1 || c.base_resolution > kMaxScale) {
    return bad("base_resolution must be in [1, 2^20], got ", c.base_resolution);
  }
  if (!std::isfinite(c.per_level_scale) || c.per_level_scale < 1.0) {
    return bad("per_level_scale must be finite and >= 1, got ", c.per_level_scale);
  }
  const float finest = LevelScale(c.levels - 1, std::log2(static_cast<float>(c.per_level_scale)), c.base_resolution);
  if (!(finest <= kMaxScale)) return bad("the finest level's scale ", finest, " exceeds 2^20");
  return absl::OkStatus();
}

HashGridLayout ComputeHashGridLayout(const HashGridConfig& config) {
  const absl::Status status = ValidateHashGridConfig(config);
  TORCH_CHECK(status.ok(), std::string(status.message()));
  const float log2_scale = std::log2(static_cast<float>(config.per_level_scale));
  const int64_t max_size = int64_t{1} << config.log2_table_size;
  HashGridLayout layout;
  layout.features = config.features_per_level;
  for (int l = 0; l < config.levels; ++l) {
    HashGridLevel level;
    level.scale = LevelScale(l, log2_scale, config.base_resolution);
    level.resolution = static_cast<int64_t>(std::ceil(level.scale)) + 1;
    const int64_t dense_rows = level.resolution * level.resolution * level.resolution;
    level.size = std::min((dense_rows + 7) / 8 * 8, max_size);  // tcnn pads levels to multiples of 8
    level.dense = dense_rows <= level.size;
    level.offset = layout.total_params;
    layout.total_params += level.size;
    layout.levels.push_back(level);
  }
  return layout;
}

int64_t HashGridVertexIndex(const HashGridLevel& level, int64_t x, int64_t y, int64_t z) {
  uint64_t index;
  if (level.dense) {
    index = static_cast<uint64_t>(x + y * level.resolution + z * level.resolution * level.resolution);
  } else {
    const uint32_t h = static_cast<uint32_t>(x) ^ (static_cast<uint32_t>(y) * 2654435761u) ^
                       (static_cast<uint32_t>(z) * 805459861u);
    index = h;
  }
  return static_cast<int64_t>(index % static_cast<uint64_t>(level.size));
}

at::Tensor InitHashGridTable(const HashGridConfig& config, at::Generator& generator, const at::Device& device) {
  const HashGridLayout layout = ComputeHashGridLayout(config);
  const at::Tensor u = at::rand({layout.total_params, layout.features}, generator, at::TensorOptions(at::kFloat));
  return (u * 2e-4 - 1e-4).to(device);
}

at::Tensor HashGridEncode(const at::Tensor& x, const at::Tensor& table, const HashGridConfig& config) {
  return Encode(x, table, config, /*allow_kernel=*/true);
}

at::Tensor HashGridEncodeTwin(const at::Tensor& x, const at::Tensor& table, const HashGridConfig& config) {
  return Encode(x, table, config, /*allow_kernel=*/false);
}

bool HashGridHasCudaKernel() { return kBuiltWithCuda; }

}  // namespace psd3d
