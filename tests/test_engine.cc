#include "tests/test_engine.h"

#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace psd3d::testing {
namespace {

struct Directives {
  int steps = 20, step_ms = 5, ckpt_every = 0, fail_at = 3;
  std::string fail;
};

Directives Parse(const v1::JobSpec& spec) {
  Directives d;
  for (absl::string_view w : absl::StrSplit(spec.prompt(), ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(w, absl::MaxSplits('=', 1));
    int v = 0;
    bool num = absl::SimpleAtoi(kv.second, &v);
    if (kv.first == "steps" && num) d.steps = v;
    else if (kv.first == "step_ms" && num) d.step_ms = v;
    else if (kv.first == "ckpt_every" && num) d.ckpt_every = v;
    else if (kv.first == "fail_at" && num) d.fail_at = v;
    else if (kv.first == "fail") d.fail = kv.second;
  }
  return d;
}

void PutU32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }

}  // namespace

std::string TinyPng() {
  static const unsigned char kPng[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xde, 0x00,
      0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01,
      0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
      0x82};
  return std::string(reinterpret_cast<const char*>(kPng), sizeof(kPng));
}

std::string TinyGlb(float s) {
  // Binary buffer: 3 positions (36 bytes) + 3 uint16 indices (6 bytes, padded to 8).
  std::string bin;
  const float pos[9] = {0, 0, 0, s, 0, 0, 0, s, 0};
  bin.append(reinterpret_cast<const char*>(pos), sizeof(pos));
  const uint16_t idx[4] = {0, 1, 2, 0};
  bin.append(reinterpret_cast<const char*>(idx), sizeof(idx));
  std::string json = absl::StrCat(
      R"({"asset":{"version":"2.0","generator":"psd3d test engine"},"scene":0,"scenes":[{"nodes":[0]}],)",
      R"("nodes":[{"mesh":0}],"meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":1}]}],)",
      R"("buffers":[{"byteLength":44}],"bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":36,"target":34962},)",
      R"({"buffer":0,"byteOffset":36,"byteLength":6,"target":34963}],)",
      R"("accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3","min":[0,0,0],"max":[)", s, ",",
      s, R"(,0]},{"bufferView":1,"componentType":5123,"count":3,"type":"SCALAR"}]})");
  while (json.size() % 4) json.push_back(' ');
  std::string glb;
  PutU32(&glb, 0x46546C67);  // "glTF"
  PutU32(&glb, 2);
  PutU32(&glb, static_cast<uint32_t>(12 + 8 + json.size() + 8 + bin.size()));
  PutU32(&glb, static_cast<uint32_t>(json.size()));
  PutU32(&glb, 0x4E4F534A);  // JSON
  glb += json;
  PutU32(&glb, static_cast<uint32_t>(bin.size()));
  PutU32(&glb, 0x004E4942);  // BIN
  glb += bin;
  return glb;
}

absl::Status TestEngine::Run(JobContext& ctx, const std::string* checkpoint) {
  const Directives d = Parse(ctx.spec());
  if (d.fail == "invalid") return absl::InvalidArgumentError("prompt: injected permanent failure");
  const v1::Stage stages[3] = {v1::STAGE_COARSE, v1::STAGE_GEOMETRY, v1::STAGE_TEXTURE};
  int steps[3] = {d.steps, d.steps, d.steps};
  for (const auto& o : ctx.spec().stage_overrides()) {
    if (o.stage() >= 1 && o.stage() <= 3 && o.has_steps()) steps[o.stage() - 1] = o.steps();
  }
  const int total = steps[0] + steps[1] + steps[2];
  const int preview_every = ctx.spec().preview_interval() > 0 ? ctx.spec().preview_interval() : 10;

  // State: global step and an accumulator that depends on every step taken (so a resumed run that
  // skipped or repeated steps would end with a different mesh).
  int done = 0;
  uint64_t acc = ctx.spec().seed();
  if (checkpoint) {
    std::pair<std::string, std::string> p = absl::StrSplit(*checkpoint, ':');
    if (!absl::SimpleAtoi(p.first, &done) || !absl::SimpleAtoi(p.second, &acc)) {
      return absl::DataLossError("checkpoint does not parse");
    }
    ctx.Log(v1::JobEvent::Log::INFO, absl::StrCat("resumed from checkpoint at step ", done));
  }
  auto save = [&] { return ctx.SaveCheckpoint(absl::StrCat(done, ":", acc), done); };

  int base = 0;
  for (int s = 0; s < 3; ++s) {
    for (int i = 1; i <= steps[s]; ++i) {
      const int global = base + i;
      if (global <= done) continue;
      const absl::Time t0 = absl::Now();
      if ((d.fail == "always" || (d.fail == "once" && ctx.attempt() == 1)) && global == d.fail_at) {
        return absl::InternalError("injected failure");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(d.step_ms));
      acc = acc * 6364136223846793005ULL + static_cast<uint64_t>(global);
      done = global;
      StepReport r;
      r.stage = stages[s];
      r.step = i;
      r.total_steps = steps[s];
      r.progress = static_cast<float>(done) / total;
      r.loss = 1.0 / global;
      r.reward = static_cast<double>(global) / total;
      r.step_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
      absl::Status st = ctx.Step(r);
      if (!st.ok()) {
        if (ctx.stop_reason() == StopReason::kShutdown) (void)save();
        return st;
      }
      if (global % preview_every == 0) {
        if (auto p = ctx.Preview(TinyPng(), -1, stages[s], i); !p.ok()) return p;
      }
      if ((d.ckpt_every > 0 && global % d.ckpt_every == 0) || i == steps[s] || ctx.CheckpointDue()) {
        if (auto c = save(); !c.ok()) return c;
      }
    }
    base += steps[s];
  }
  float scale = 1.0f + static_cast<float>(acc % 1000) / 1000.0f;
  return ctx.PutArtifact("mesh.glb", TinyGlb(scale), "model/gltf-binary");
}

}  // namespace psd3d::testing
