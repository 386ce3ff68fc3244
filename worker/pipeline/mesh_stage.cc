#include "worker/pipeline/mesh_stage.h"

#include <chrono>
#include <cmath>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"
#include "worker/mesh/mesh_ops.h"
#include "worker/optim/adam.h"
#include "worker/pipeline/stage_common.h"
#include "worker/render/rasterizer.h"
#include "worker/render/shading.h"
#include "worker/tinyworld/scene_render.h"

namespace psd3d {
namespace {

// The surface seen from `cams`: [B,3,size,size] in [0,1] over white, differentiable w.r.t. the mesh's
// vertices (positions, `normals` = VertexNormals(mesh), silhouettes) and the color field. Only covered
// pixels query the field.
at::Tensor RenderSurface(const Mesh& mesh, const at::Tensor& normals, const NerfField& color, const CameraBatch& cams,
                         int64_t size, int64_t supersample) {
  const int64_t hi = size * supersample, b = cams.size();
  const at::Tensor clip = ToClipSpace(mesh.vertices, cams.mvp);
  Fragments f = Rasterize(clip, mesh.faces, hi, hi, at::cat({mesh.vertices, normals}, -1).unsqueeze(0));
  const at::Tensor covered = f.mask.reshape({-1}).nonzero().squeeze(1);
  const double r = color.config().radius;
  const at::Tensor points = f.attr.narrow(-1, 0, 3).reshape({-1, 3}).index_select(0, covered).clamp(-r, r);
  const at::Tensor albedo =
      at::zeros({b * hi * hi, 3}, points.options()).index_copy(0, covered, color.Albedo(points)).view({b, hi, hi, 3});
  const at::Tensor rgb = Shade(albedo, f.attr.narrow(-1, 3, 3), tinyworld::WorldLighting(cams.c2w), ShadingMode::kLambertian);
  const at::Tensor img = Antialias(OverBackground(rgb, f.mask, at::ones({3}, rgb.options())), f, clip, mesh.faces);
  const at::Tensor nchw = img.permute({0, 3, 1, 2});
  return supersample > 1 ? at::avg_pool2d(nchw, supersample) : nchw;
}

// Copy of a field (same config, same parameters) on its device.
NerfField CopyField(const NerfField& field) {
  NerfField copy(field.config(), 0, field.device());
  std::map<std::string, at::Tensor> state;
  for (const auto& [k, v] : field.StateDict()) state[k] = v.clone();
  TORCH_CHECK(copy.LoadStateDict(state).ok(), "MeshStage: copying the color field failed");
  return copy;
}

}  // namespace

absl::Status ValidateMeshStageConfig(const MeshStageConfig& c) {
  const char* stage = c.train_geometry ? "geometry stage" : "texture stage";
  auto bad = [&](absl::string_view what) { return absl::InvalidArgumentError(absl::StrCat(stage, ": ", what)); };
  if (c.steps < 1) return bad("steps must be at least 1");
  if (c.views < 1 || c.views > 64) return bad("views must be in [1, 64]");
  if (c.render_size < 8 || c.render_size > 1024) return bad("render_size must be in [8, 1024]");
  if (c.supersample < 1 || c.supersample > 4) return bad("supersample must be in [1, 4]");
  if (c.resolution < 4 || c.resolution > 256) return bad("resolution must be in [4, 256]");
  if (!(c.init_threshold > 0)) return bad("init_threshold must be > 0");
  if (c.init_smoothing < 0 || c.init_smoothing > 8) return bad("init_smoothing must be in [0, 8]");
  if (!(c.init_softness >= 0 && c.init_softness <= 1e4)) return bad("init_softness must be in [0, 1e4]");
  if (!(c.lr_sdf > 0) || !(c.lr_deformation > 0) || !(c.lr_encoding > 0) || !(c.lr_mlp > 0))
    return bad("learning rates must be > 0");
  if (!(c.normal_consistency_weight >= 0) || !(c.laplacian_weight >= 0)) return bad("regularizer weights must be ≥ 0");
  return absl::OkStatus();
}

struct MeshStage::Impl {
  MeshStageConfig config;
  DiffusionPrior& prior;
  std::unique_ptr<Guidance> guidance;
  NerfField color;
  DMTet dmtet;
  Mesh frozen;               // texture stage: the surface, extracted once
  at::Tensor frozen_normals;  // and its vertex normals
  std::unique_ptr<Adam> adam;
  at::Generator generator;
  int64_t step = 0;

  Impl(const MeshStageConfig& c, DiffusionPrior& p, const NerfField& field, int64_t resolution, uint64_t seed)
      : config(c),
        prior(p),
        color(CopyField(field)),
        dmtet(DMTetOptions{resolution, field.config().radius, /*deformable=*/true}, field.device()),
        generator(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  void MakeOptimizer() {
    NerfField::ParameterGroups g = color.Parameters();
    std::vector<AdamGroup> groups = {{g.encoding, config.lr_encoding}, {g.mlp, config.lr_mlp}};
    if (config.train_geometry) {
      groups.push_back({{dmtet.sdf()}, config.lr_sdf});
      groups.push_back({{dmtet.deformation()}, config.lr_deformation});
    }
    adam = std::make_unique<Adam>(groups);
  }

  // The surface to render: differentiable (geometry stage) or the frozen one.
  absl::StatusOr<Mesh> Surface() const {
    if (!config.train_geometry) return frozen;
    Mesh m = dmtet.Extract();
    if (m.num_faces() == 0) return absl::FailedPreconditionError("the surface vanished (no face left)");
    return m;
  }

  absl::Status Freeze() {
    c10::NoGradGuard no_grad;
    frozen = dmtet.Extract();
    frozen.vertices = frozen.vertices.detach();
    if (frozen.num_faces() == 0) return absl::FailedPreconditionError("texture stage: the geometry has no surface");
    frozen_normals = VertexNormals(frozen);
    return absl::OkStatus();
  }

  // Vertex normals of a Surface(): the frozen surface's are computed once.
  at::Tensor Normals(const Mesh& m) const { return config.train_geometry ? VertexNormals(m) : frozen_normals; }
};

MeshStage::MeshStage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MeshStage::~MeshStage() = default;
int64_t MeshStage::step() const { return impl_->step; }
bool MeshStage::done() const { return impl_->step >= impl_->config.steps; }
const NerfField& MeshStage::color_field() const { return impl_->color; }
const DMTet& MeshStage::dmtet() const { return impl_->dmtet; }
const Guidance& MeshStage::guidance() const { return *impl_->guidance; }

absl::StatusOr<std::unique_ptr<MeshStage>> MeshStage::Create(DiffusionPrior& prior, RewardModel* reward,
                                                             const std::string& prompt, const MeshStageConfig& config,
                                                             const NerfField& field, uint64_t seed,
                                                             const std::map<std::string, at::Tensor>* geometry,
                                                             const std::map<std::string, at::Tensor>* guidance_state) {
  if (absl::Status s = ValidateMeshStageConfig(config); !s.ok()) return s;
  int64_t resolution = config.resolution;
  if (!config.train_geometry) {
    if (geometry == nullptr || !geometry->count("sdf"))
      return absl::InvalidArgumentError("texture stage: needs the geometry stage's surface");
    // V = (N+1)³ vertices.
    resolution = std::llround(std::cbrt(static_cast<double>(geometry->at("sdf").numel()))) - 1;
  }
  auto impl = std::make_unique<Impl>(config, prior, field, resolution, seed);
  if (config.train_geometry) {
    // sdf = clamp(threshold − density, −1, 1), or tanh(ln(threshold/density)/softness). A coarse field
    // whose density never reaches the threshold (a faint object) gets the threshold halfway to its
    // peak, so a surface always starts.
    c10::NoGradGuard no_grad;
    const at::Tensor& verts = impl->dmtet.grid().vertices;
    double peak = 0;
    for (int64_t i = 0; i < verts.size(0); i += 1 << 18)
      peak = std::max(peak, field.Density(verts.narrow(0, i, std::min<int64_t>(1 << 18, verts.size(0) - i))).max().item<double>());
    const double threshold = std::min(config.init_threshold, 0.5 * peak);
    if (!(threshold > 0))
      return absl::FailedPreconditionError("geometry stage: the coarse stage left no density to start a surface from");
    DMTet::DensityInit init;
    init.threshold = threshold;
    init.smoothing = config.init_smoothing;
    init.softness = config.init_softness;
    if (absl::Status s = impl->dmtet.InitFromDensity([&field](const at::Tensor& p) { return field.Density(p); }, init);
        !s.ok())
      return s;
  } else {
    if (absl::Status s = impl->dmtet.LoadState(*geometry); !s.ok()) return s;
    if (absl::Status s = impl->Freeze(); !s.ok()) return s;
  }
  impl->MakeOptimizer();
  absl::StatusOr<std::unique_ptr<Guidance>> g = Guidance::Create(prior, reward, prompt, config.guidance);
  if (!g.ok()) return g.status();
  impl->guidance = *std::move(g);
  if (guidance_state != nullptr) {
    if (absl::Status s = impl->guidance->LoadState(*guidance_state); !s.ok()) return s;
  }
  return std::unique_ptr<MeshStage>(new MeshStage(std::move(impl)));
}

absl::StatusOr<StageStepReport> MeshStage::Step() {
  Impl& s = *impl_;
  const char* stage = s.config.train_geometry ? "geometry stage" : "texture stage";
  const auto start = std::chrono::steady_clock::now();
  StageStepReport report;
  report.step = s.step;
  absl::StatusOr<Mesh> mesh = s.Surface();
  if (!mesh.ok()) return absl::FailedPreconditionError(absl::StrCat(stage, ": ", mesh.status().message(), " at step ", s.step));
  CameraBatch cams = tinyworld::SampleWorldCameras(s.config.views, s.generator, s.color.device());
  at::Tensor images = RenderSurface(*mesh, s.Normals(*mesh), s.color, cams, s.config.render_size, s.config.supersample);
  at::Tensor loss = s.guidance->Loss(ResizeRenders(images, s.prior.image_size()), cams, s.step, s.generator, &report.guidance);
  if (s.config.train_geometry) {
    if (s.config.normal_consistency_weight > 0) loss = loss + s.config.normal_consistency_weight * NormalConsistencyLoss(*mesh);
    if (s.config.laplacian_weight > 0) loss = loss + s.config.laplacian_weight * LaplacianLoss(*mesh);
  }
  loss.backward();
  if (s.config.train_geometry) {
    // Sliver triangles from marching tets (an edge crossing right at a vertex) and pixels on
    // near-degenerate faces give unbounded position gradients for a handful of vertices; those
    // entries are dropped. A non-finite loss or color gradient still fails the step below.
    for (const at::Tensor& p : {s.dmtet.sdf(), s.dmtet.deformation()})
      if (p.grad().defined()) p.grad().nan_to_num_(0.0, 0.0, 0.0);
  }
  // The geometry's gradients were made finite above; the color field's must be.
  if (absl::Status st = FinishStep(loss, s.color.Parameters().All(), report.guidance, *s.adam, stage, s.step, &report.loss); !st.ok()) return st;
  ++s.step;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

Mesh MeshStage::Surface() const {
  c10::NoGradGuard no_grad;
  if (!impl_->config.train_geometry) return impl_->frozen;
  Mesh m = impl_->dmtet.Extract();
  m.vertices = m.vertices.detach();
  return m;
}

at::Tensor MeshStage::Render(const CameraBatch& cameras, int64_t size) const {
  c10::NoGradGuard no_grad;
  Mesh mesh = Surface();
  if (mesh.num_faces() == 0) return at::ones({cameras.size(), 3, size, size}, cameras.mvp.options());
  return RenderSurface(mesh, impl_->Normals(mesh), impl_->color, cameras, size,
                       std::max<int64_t>(impl_->config.supersample, 2));
}

std::map<std::string, at::Tensor> MeshStage::State() const {
  std::map<std::string, at::Tensor> state = WithPrefix(impl_->color.StateDict(), "color.");
  state.merge(WithPrefix(impl_->dmtet.State(), "dmtet."));
  for (auto& [k, v] : state) v = v.cpu();
  PutTrainingState(*impl_->adam, *impl_->guidance, impl_->generator, impl_->step, &state);
  return state;
}

absl::Status MeshStage::LoadState(const std::map<std::string, at::Tensor>& state) {
  Impl& s = *impl_;
  if (absl::Status st = LoadTrainingState(state, "mesh stage", *s.adam, *s.guidance, s.generator, &s.step); !st.ok())
    return st;
  if (absl::Status st = s.color.LoadStateDict(Unprefixed(state, "color.")); !st.ok()) return st;
  if (absl::Status st = s.dmtet.LoadState(Unprefixed(state, "dmtet.")); !st.ok()) return st;
  return s.config.train_geometry ? absl::OkStatus() : s.Freeze();
}

}  // namespace psd3d
