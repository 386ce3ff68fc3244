#include "tools/eval/grid.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"
#include "tools/eval/run_list.h"
#include "worker/formats/glb_reader.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/world.h"

namespace psd3d::eval {
namespace {

constexpr int64_t kGap = 2;
constexpr float kGapGray = 0.55f, kMissingGray = 0.88f, kCrossGray = 0.35f;
constexpr float kReferenceYaw = 0.3f;  // radians: cube and pyramid show two faces

// Subject order of a prompt (unparseable prompts last, by text).
int SubjectOrder(const std::string& prompt) {
  absl::StatusOr<tinyworld::Subject> s = tinyworld::ParsePrompt(prompt);
  return s.ok() ? tinyworld::SubjectIndex(*s) : tinyworld::kNumColors * tinyworld::kNumShapes;
}

void SortBySubject(std::vector<std::string>* prompts) {
  std::stable_sort(prompts->begin(), prompts->end(),
                   [](const std::string& a, const std::string& b) { return SubjectOrder(a) < SubjectOrder(b); });
}

CameraBatch GridCamera() {
  const double deg = M_PI / 180.0;
  return tinyworld::WorldCameras(at::full({1}, kGridElevationDeg * deg, at::kFloat),
                                 at::full({1}, kGridAzimuthDeg * deg, at::kFloat));
}

// [cell,cell,3]: light gray with a dark cross.
at::Tensor MissingCell(int64_t cell) {
  at::Tensor img = at::full({cell, cell, 3}, kMissingGray, at::kFloat);
  const at::Tensor i = at::arange(cell, at::kLong);
  const at::Tensor diag = (i.unsqueeze(1) - i.unsqueeze(0)).abs().le(1) |
                          (i.unsqueeze(1) + i.unsqueeze(0) - (cell - 1)).abs().le(1);
  return img.masked_fill(diag.unsqueeze(-1), kCrossGray);
}

// [cell,cell,3] from a render [1,3,cell,cell].
at::Tensor Cell(const at::Tensor& render) { return render[0].permute({1, 2, 0}).contiguous(); }

absl::StatusOr<at::Tensor> GroundTruthCell(const std::string& prompt, int64_t cell) {
  absl::StatusOr<tinyworld::Subject> s = tinyworld::ParsePrompt(prompt);
  if (!s.ok()) return s.status();
  tinyworld::RenderOptions options;
  options.size = cell;
  return Cell(tinyworld::RenderScenes({tinyworld::SubjectScene(*s, kReferenceYaw)}, GridCamera(), options));
}

absl::StatusOr<at::Tensor> RunCell(const RunResult* run, const std::string& out_dir, int64_t cell) {
  if (run == nullptr) return absl::NotFoundError("no such run");
  if (!run->ok) return absl::FailedPreconditionError("the run failed");
  if (run->glb.empty()) return absl::NotFoundError("the run kept no GLB (--glb=false)");
  absl::StatusOr<Mesh> mesh = ReadGlb((std::filesystem::path(out_dir) / run->glb).string());
  if (!mesh.ok()) return mesh.status();
  tinyworld::RenderOptions options;
  options.size = cell;
  return Cell(tinyworld::RenderMesh(*mesh, GridCamera(), options));
}

}  // namespace

GridLayout ChooseGridLayout(const std::vector<RunResult>& results, int64_t max_seen) {
  GridLayout layout;
  if (results.empty()) return layout;
  layout.seed = std::min_element(results.begin(), results.end(), [](const RunResult& a, const RunResult& b) {
                  return a.seed < b.seed;
                })->seed;
  std::set<std::string> held_out, seen, methods;
  for (const RunResult& r : results) {
    if (r.seed != layout.seed) continue;
    (r.held_out ? held_out : seen).insert(r.prompt);
    methods.insert(r.method);
  }
  layout.prompts.assign(held_out.begin(), held_out.end());
  SortBySubject(&layout.prompts);
  std::vector<std::string> seen_sorted(seen.begin(), seen.end());
  SortBySubject(&seen_sorted);
  const int64_t n = static_cast<int64_t>(seen_sorted.size()), k = std::min(n, std::max<int64_t>(0, max_seen));
  for (int64_t i = 0; i < k; ++i) layout.prompts.push_back(seen_sorted[i * n / k]);

  for (GuidanceMethod m : AllMethods()) {
    const std::string name(GuidanceMethodName(m));
    if (methods.erase(name)) layout.methods.push_back(name);
  }
  layout.methods.insert(layout.methods.end(), methods.begin(), methods.end());  // unknown names, sorted
  return layout;
}

at::Tensor RenderGrid(const std::vector<RunResult>& results, const GridLayout& layout, const std::string& out_dir,
                      int64_t cell, std::vector<std::string>* notes) {
  c10::NoGradGuard no_grad;
  std::map<std::pair<std::string, std::string>, const RunResult*> runs;  // (prompt, method) at the seed
  for (const RunResult& r : results)
    if (r.seed == layout.seed) runs[{r.prompt, r.method}] = &r;

  const int64_t rows = static_cast<int64_t>(layout.prompts.size());
  const int64_t cols = 1 + static_cast<int64_t>(layout.methods.size());
  at::Tensor grid = at::full({rows * (cell + kGap) + kGap, cols * (cell + kGap) + kGap, 3}, kGapGray, at::kFloat);
  for (int64_t i = 0; i < rows; ++i) {
    const std::string& prompt = layout.prompts[i];
    for (int64_t j = 0; j < cols; ++j) {
      absl::StatusOr<at::Tensor> img;
      if (j == 0) {
        img = GroundTruthCell(prompt, cell);
      } else {
        auto it = runs.find({prompt, layout.methods[j - 1]});
        img = RunCell(it == runs.end() ? nullptr : it->second, out_dir, cell);
      }
      if (!img.ok() && notes != nullptr) {
        notes->push_back(absl::StrCat("row ", i + 1, " ('", prompt, "'), column ", j + 1, " (",
                                      j == 0 ? "ground truth" : layout.methods[j - 1], "): ", img.status().message()));
      }
      const int64_t y = kGap + i * (cell + kGap), x = kGap + j * (cell + kGap);
      grid.narrow(0, y, cell).narrow(1, x, cell).copy_(img.ok() ? *img : MissingCell(cell));
    }
  }
  return grid;
}

}  // namespace psd3d::eval
