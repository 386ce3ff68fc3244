// psd3d-tinyworld world-grid: a picture of the world (every subject, rows by color, columns by shape,
// from a few random views) for docs/ and for eyeballing the renderer.
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <filesystem>

#include "absl/flags/flag.h"
#include "tools/tinyworld/command.h"
#include "worker/formats/png.h"
#include "worker/tinyworld/scene_render.h"

ABSL_FLAG(int, world_views, 1, "world-grid: random views per subject (side by side)");

namespace psd3d::tinyworld {
namespace {

int WorldGrid() {
  const int views = std::max(1, absl::GetFlag(FLAGS_world_views));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(absl::GetFlag(FLAGS_seed));
  std::vector<Scene> scenes;
  for (const Subject& s : AllSubjects()) {
    for (int v = 0; v < views; ++v) {
      const float yaw = at::rand({1}, gen).item<float>() * 6.2831853f;
      scenes.push_back(SubjectScene(s, yaw));
    }
  }
  const at::Device device = FlagDevice();
  CameraBatch cams = SampleWorldCameras(static_cast<int64_t>(scenes.size()), gen, device);
  at::Tensor images = RenderScenes(scenes, cams).cpu();  // [48·views,3,64,64], color-major, shape-minor
  const std::string dir = absl::GetFlag(FLAGS_out);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/tiny-world.png";
  absl::Status st = WritePng(path, ImageGrid(images.permute({0, 2, 3, 1}), kNumShapes * views));
  if (!st.ok()) {
    std::fprintf(stderr, "world-grid: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::printf("wrote %s (rows: %d colors; columns: %d shapes × %d views)\n", path.c_str(), kNumColors, kNumShapes, views);
  return 0;
}

PSD3D_TINYWORLD_COMMAND("world-grid", "a PNG of every subject of the world (rows: colors, columns: shapes)", WorldGrid);

}  // namespace
}  // namespace psd3d::tinyworld
