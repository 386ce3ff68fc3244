// psd3d-tinyworld sample-prior: a labeled PNG grid (rows: prompts, columns: the judge's views) of DDIM
// samples from the pack's prior, for docs/ and for eyeballing a training run, plus the raw images as
// safetensors for the judge:
//   <out>/<name>.png           rows labeled with the prompt, "*" marks held-out subjects
//   <out>/<name>.safetensors   "images" [P,V,3,S,S] float32 in [0,1], "elevation" and "azimuth" [V]
//                              (radians); metadata: prompts and held_out (JSON arrays), steps, guidance,
//                              eta, seed, prior
// The default prompts are "a {color} {shape}" for all 48 subjects in AllSubjects order (color-major).
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tools/tinyworld/command.h"
#include "tools/tinyworld/plot.h"
#include "worker/formats/png.h"
#include "worker/formats/safetensors.h"
#include "worker/models/ddim_sampler.h"
#include "worker/tinyworld/scene_render.h"
#include "worker/tinyworld/tiny_prior.h"

ABSL_FLAG(std::string, prior_sample_prompts, "",
          "sample-prior: comma-separated prompts (default: 'a {color} {shape}' for all 48 subjects)");
ABSL_FLAG(int64_t, prior_sample_views, 8, "sample-prior: how many of the 8 judge views (columns)");
ABSL_FLAG(int64_t, prior_sample_steps, 50, "sample-prior: DDIM steps");
ABSL_FLAG(double, prior_sample_guidance, 5.0, "sample-prior: classifier-free guidance scale (1: none)");
ABSL_FLAG(double, prior_sample_eta, 0.0, "sample-prior: DDIM eta (0: deterministic)");
ABSL_FLAG(int64_t, prior_sample_batch, 384, "sample-prior: images per sampling call (twice that with guidance)");
ABSL_FLAG(std::string, prior_sample_name, "prior-samples", "sample-prior: base name of the files in --out");

namespace psd3d::tinyworld {
namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "sample-prior: %s\n", status.ToString().c_str());
  return 1;
}

struct Prompt {
  std::string text;
  bool held_out = false;
};

std::vector<Prompt> PromptsFromFlag() {
  std::vector<Prompt> prompts;
  const std::string flag = absl::GetFlag(FLAGS_prior_sample_prompts);
  if (flag.empty()) {
    for (const Subject& s : AllSubjects()) prompts.push_back({MakePrompt(s, 0), IsHeldOut(s)});
    return prompts;
  }
  for (absl::string_view part : absl::StrSplit(flag, ',', absl::SkipWhitespace())) {
    Prompt p{std::string(absl::StripAsciiWhitespace(part))};
    absl::StatusOr<Subject> subject = ParsePrompt(p.text);
    p.held_out = subject.ok() && IsHeldOut(*subject);
    prompts.push_back(std::move(p));
  }
  return prompts;
}

// Samples [n·V,3,S,S] (prompt-major) of `contexts` [n,L,D] from each of `views`.
at::Tensor SamplePrompts(TinyPrior& prior, const at::Tensor& contexts, const CameraBatch& views,
                         const DdimOptions& ddim, at::Generator& generator) {
  const int64_t n = contexts.size(0), v = views.size();
  const at::Tensor context = contexts.repeat_interleave(v, 0);
  const CameraBatch cameras = WorldCameras(views.elevation.repeat({n}), views.azimuth.repeat({n}));
  return SampleDdim(prior, context, cameras, ddim, generator);
}

// The grid [header + P·S, label + V·S, 3] uint8: one row per prompt, labeled on the left, one column
// per view, labeled on top.
at::Tensor LabeledGrid(const at::Tensor& images, const std::vector<Prompt>& prompts, const CameraBatch& views) {
  const int64_t p = images.size(0), v = images.size(1), size = images.size(3), scale = 2, pad = 8;
  int64_t label_width = 0;
  for (const Prompt& prompt : prompts) {
    label_width = std::max(label_width, TextWidth(prompt.text + (prompt.held_out ? " *" : ""), scale));
  }
  label_width += 2 * pad;
  const int64_t header = 2 * kGlyphHeight + 3 * pad;
  at::Tensor cells = (images.permute({0, 3, 1, 4, 2}).reshape({p * size, v * size, 3}) * 255).round().clamp(0, 255);
  at::Tensor grid = at::full({p * size + header, label_width + v * size, 3}, 255, at::kByte);
  grid.narrow(0, header, p * size).narrow(1, label_width, v * size).copy_(cells.to(at::kByte));
  const at::Tensor elevation = views.elevation.cpu() * (180.0 / M_PI), azimuth = views.azimuth.cpu() * (180.0 / M_PI);
  for (int64_t j = 0; j < v; ++j) {  // two lines per view: azimuth, elevation (degrees)
    const std::string az = absl::StrFormat("az %.0f", azimuth[j].item<double>());
    const std::string el = absl::StrFormat("el %.0f", elevation[j].item<double>());
    DrawText(grid, label_width + j * size + (size - TextWidth(az, 1)) / 2, pad, az, 1, {0, 0, 0});
    DrawText(grid, label_width + j * size + (size - TextWidth(el, 1)) / 2, 2 * pad + kGlyphHeight, el, 1, {0, 0, 0});
  }
  for (int64_t i = 0; i < p; ++i) {
    const Rgb8 color = prompts[i].held_out ? Rgb8{200, 0, 0} : Rgb8{0, 0, 0};
    DrawText(grid, pad, header + i * size + (size - kGlyphHeight * scale) / 2,
             prompts[i].text + (prompts[i].held_out ? " *" : ""), scale, color);
  }
  return grid;
}

JsonValue StringArray(const std::vector<std::string>& items) {
  JsonValue a = JsonValue::Array();
  for (const std::string& s : items) a.Push(JsonValue::String(s));
  return a;
}

int SamplePrior() {
  const std::string pack = absl::GetFlag(FLAGS_pack), out = absl::GetFlag(FLAGS_out);
  const at::Device device = FlagDevice();
  absl::StatusOr<std::unique_ptr<TinyPrior>> loaded = TinyPrior::Load(pack, device);
  if (!loaded.ok()) return Fail(loaded.status());
  TinyPrior& prior = **loaded;

  DdimOptions ddim;
  ddim.steps = absl::GetFlag(FLAGS_prior_sample_steps);
  ddim.guidance_scale = absl::GetFlag(FLAGS_prior_sample_guidance);
  ddim.eta = absl::GetFlag(FLAGS_prior_sample_eta);
  const int64_t num_views = absl::GetFlag(FLAGS_prior_sample_views);
  if (ddim.steps < 1 || ddim.steps > prior.schedule().num_steps() || num_views < 1 || num_views > 8 ||
      !(ddim.eta >= 0)) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("need --prior_sample_steps in [1, ", prior.schedule().num_steps(),
                                                "], --prior_sample_views in [1, 8], --prior_sample_eta ≥ 0")));
  }
  const std::vector<Prompt> prompts = PromptsFromFlag();
  if (prompts.empty()) return Fail(absl::InvalidArgumentError("--prior_sample_prompts names no prompt"));
  std::vector<at::Tensor> contexts;
  std::vector<std::string> texts, held_out;
  for (const Prompt& p : prompts) {
    absl::StatusOr<at::Tensor> c = prior.EncodePrompt(p.text);
    if (!c.ok()) return Fail(c.status());
    contexts.push_back(*c);
    texts.push_back(p.text);
    if (p.held_out) held_out.push_back(p.text);
  }
  const CameraBatch all_views = JudgeCameras(device);
  const CameraBatch views =
      WorldCameras(all_views.elevation.narrow(0, 0, num_views), all_views.azimuth.narrow(0, 0, num_views));
  const int64_t per_call = std::max<int64_t>(1, absl::GetFlag(FLAGS_prior_sample_batch) / num_views);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(absl::GetFlag(FLAGS_seed));

  std::printf("sample-prior: %s, %zu prompts × %lld views, %lld DDIM steps, guidance %g, eta %g, seed %llu, %s\n",
              prior.name().c_str(), prompts.size(), static_cast<long long>(num_views),
              static_cast<long long>(ddim.steps), ddim.guidance_scale, ddim.eta,
              static_cast<unsigned long long>(absl::GetFlag(FLAGS_seed)), device.str().c_str());
  for (const Prompt& p : prompts)
    std::printf("  %s%s\n", p.text.c_str(), p.held_out ? "   (held-out: never shown to the prior)" : "");
  const absl::Time start = absl::Now();
  std::vector<at::Tensor> images;
  for (int64_t first = 0; first < static_cast<int64_t>(prompts.size()); first += per_call) {
    const int64_t n = std::min<int64_t>(per_call, static_cast<int64_t>(prompts.size()) - first);
    const at::Tensor part = at::cat(std::vector<at::Tensor>(contexts.begin() + first, contexts.begin() + first + n));
    images.push_back(SamplePrompts(prior, part, views, ddim, generator).cpu());
    std::printf("sample-prior: %lld/%zu prompts, %.1f s\n", static_cast<long long>(first + n), prompts.size(),
                absl::ToDoubleSeconds(absl::Now() - start));
    std::fflush(stdout);
  }
  const int64_t size = prior.image_size();
  const at::Tensor all =
      at::cat(images).view({static_cast<int64_t>(prompts.size()), num_views, 3, size, size}).contiguous();

  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Fail(absl::InternalError(absl::StrCat("cannot create ", out, ": ", ec.message())));
  const std::string base = out + "/" + absl::GetFlag(FLAGS_prior_sample_name);
  const std::map<std::string, std::string> metadata = {{"prompts", StringArray(texts).Dump()},
                                                       {"held_out", StringArray(held_out).Dump()},
                                                       {"steps", absl::StrCat(ddim.steps)},
                                                       {"guidance", absl::StrCat(ddim.guidance_scale)},
                                                       {"eta", absl::StrCat(ddim.eta)},
                                                       {"seed", absl::StrCat(absl::GetFlag(FLAGS_seed))},
                                                       {"prior", prior.name()}};
  const std::map<std::string, at::Tensor> tensors = {
      {"images", all}, {"elevation", views.elevation.cpu()}, {"azimuth", views.azimuth.cpu()}};
  if (absl::Status s = WriteSafetensors(base + ".safetensors", tensors, metadata); !s.ok()) return Fail(s);
  if (absl::Status s = WritePng(base + ".png", LabeledGrid(all, prompts, views)); !s.ok()) return Fail(s);
  std::printf("sample-prior: wrote %s.png (rows: prompts, * = held-out; columns: views) and %s.safetensors in %.1f s\n",
              base.c_str(), base.c_str(), absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}

PSD3D_TINYWORLD_COMMAND("sample-prior",
                        "a labeled PNG grid (prompts × judge views) of DDIM samples from the pack's prior, plus the "
                        "raw images as safetensors",
                        SamplePrior);

}  // namespace
}  // namespace psd3d::tinyworld
