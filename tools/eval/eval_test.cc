// psd3d-eval's modules: the run list and shards, the results CSV (round trip, torn rows, appending),
// the statistics, the summary's tables and paired deltas, the grid's layout, and one whole tiny
// evaluation with the shipped pack on CPU (run, resume, summarize).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "absl/strings/match.h"
#include "common/file_io.h"
#include "tools/eval/eval_run.h"
#include "tools/eval/grid.h"
#include "tools/eval/results_csv.h"
#include "tools/eval/run_command.h"
#include "tools/eval/run_list.h"
#include "tools/eval/stats.h"
#include "tools/eval/summary.h"
#include "worker/formats/png.h"
#include "worker/pipeline/presets.h"
#include "worker/tinyworld/pack.h"

namespace psd3d::eval {
namespace {

namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("psd3d_eval_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

RunResult Finished(const std::string& method, const std::string& prompt, uint64_t seed, bool held_out, double reward) {
  RunResult r;
  r.method = method;
  r.prompt = prompt;
  r.seed = seed;
  r.held_out = held_out;
  r.quality = "draft";
  r.ok = true;
  r.reward = reward;
  r.reward_eval = reward / 2;
  r.delta_e = 10;
  r.shape_correct = true;
  r.color_correct = false;
  r.floater_share = 0;
  r.wall_s = 1;
  return r;
}

TEST(RunListTest, ParsesMethods) {
  EXPECT_EQ(ParseMethods("all")->size(), 5u);
  EXPECT_EQ(ParseMethods("")->front(), GuidanceMethod::kSds);
  auto two = ParseMethods("psd, sds");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, (std::vector<GuidanceMethod>{GuidanceMethod::kPsd, GuidanceMethod::kSds}));
  EXPECT_FALSE(ParseMethods("sds,sds").ok());
  EXPECT_TRUE(absl::StrContains(ParseMethods("sds,magic").status().message(), "magic"));
}

TEST(RunListTest, ParsesPromptSelections) {
  EXPECT_EQ(ParsePrompts("all")->size(), 48u);
  EXPECT_EQ(ParsePrompts("seen")->size(), 42u);
  auto held = ParsePrompts("held_out");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->size(), 6u);
  for (const std::string& p : *held) EXPECT_TRUE(*IsHeldOutPrompt(p)) << p;
  auto list = ParsePrompts(" a red cube ; an orange sphere");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::string>{"a red cube", "an orange sphere"}));
  EXPECT_FALSE(ParsePrompts("a red cube;a red cube").ok());
  EXPECT_FALSE(ParsePrompts("a plaid cube").ok());
}

TEST(RunListTest, ShardsPartitionTheRunsInSeedMajorOrder) {
  EXPECT_FALSE(ParseShard("3/3").ok());
  EXPECT_FALSE(ParseShard("1").ok());
  EXPECT_FALSE(ParseShard("-1/2").ok());
  auto runs = MakeRuns({GuidanceMethod::kSds, GuidanceMethod::kPsd}, {"a red cube", "a red torus"}, 3);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 12u);
  EXPECT_EQ((*runs)[0].method, GuidanceMethod::kSds);
  EXPECT_EQ((*runs)[1].method, GuidanceMethod::kPsd);
  EXPECT_EQ((*runs)[1].prompt, "a red cube");
  EXPECT_EQ((*runs)[2].prompt, "a red torus");
  EXPECT_TRUE((*runs)[2].held_out);
  EXPECT_EQ((*runs)[4].seed, 2u);
  std::set<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    const Shard shard = *ParseShard(std::to_string(i) + "/5");
    for (const EvalRun& r : *runs)
      if (shard.Contains(r)) EXPECT_TRUE(keys.insert(RunKey(r)).second);
  }
  EXPECT_EQ(keys.size(), 12u);
  EXPECT_FALSE(MakeRuns({GuidanceMethod::kSds}, {"a red cube"}, 0).ok());
}

TEST(ResultsCsvTest, RoundTripsEveryFieldAndQuotes) {
  RunResult a = Finished("psd", "a red cube", 2, false, -1.25);
  a.subject = "red cube";
  a.shape = "cube";
  a.nearest_color = "red";
  a.steps_scale = 0.05;
  a.settings = "all.tau=2 coarse.t_max=0.9:0.5";
  a.faces = 1234;
  a.glb = "glb/x.glb";
  RunResult b;
  b.method = "sds";
  b.prompt = "a red torus";
  b.seed = 1;
  b.held_out = true;
  b.error = "pipeline: step 3, \"nan\"\nloss";
  std::vector<std::string> warnings;
  auto rows = ParseResultsCsv(CsvHeader() + CsvRow(a) + CsvRow(b), "x.csv", &warnings);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_TRUE(warnings.empty());
  const RunResult& a2 = (*rows)[0];
  EXPECT_EQ(a2.method, "psd");
  EXPECT_EQ(a2.seed, 2u);
  EXPECT_DOUBLE_EQ(a2.reward, -1.25);
  EXPECT_DOUBLE_EQ(a2.steps_scale, 0.05);
  EXPECT_EQ(a2.settings, "all.tau=2 coarse.t_max=0.9:0.5");
  EXPECT_EQ(a2.faces, 1234);
  EXPECT_TRUE(a2.ok && a2.shape_correct && !a2.color_correct);
  EXPECT_EQ(a2.glb, "glb/x.glb");
  const RunResult& b2 = (*rows)[1];
  EXPECT_FALSE(b2.ok);
  EXPECT_TRUE(b2.held_out);
  EXPECT_EQ(b2.error, "pipeline: step 3, \"nan\" loss");
  EXPECT_TRUE(std::isnan(b2.reward));
}

TEST(ResultsCsvTest, SkipsTornRowsAndReadsByHeaderName) {
  std::vector<std::string> warnings;
  const std::string text = "seed,ok,prompt,method,unknown\n3,1,a red cube,psd,x\n4,1,a red";
  auto rows = ParseResultsCsv(text, "x.csv", &warnings);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].seed, 3u);
  EXPECT_EQ((*rows)[0].method, "psd");
  EXPECT_EQ(warnings.size(), 1u);
  EXPECT_FALSE(ParseResultsCsv("a,b\n1,2\n", "x.csv", &warnings).ok());
}

TEST(ResultsCsvTest, WriterAppendsAfterATornLineAndReaderFindsAllShards) {
  const fs::path dir = TempDir("csv");
  const std::string path = (dir / ResultsFileName(1, 2)).string();
  {
    auto w = ResultsWriter::Open(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Finished("sds", "a red cube", 1, false, 1)).ok());
  }
  {
    std::ofstream torn(path, std::ios::app);
    torn << "psd,a red";
  }
  {
    auto w = ResultsWriter::Open(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Finished("psd", "a red cube", 1, false, 2)).ok());
  }
  auto w0 = ResultsWriter::Open((dir / ResultsFileName(0, 2)).string());
  ASSERT_TRUE((*w0)->Append(Finished("psd", "a red torus", 1, true, 3)).ok());
  std::vector<std::string> warnings;
  auto rows = ReadResults(dir.string(), &warnings);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), 3u);
  EXPECT_EQ(warnings.size(), 1u);  // the torn row
  EXPECT_TRUE(ReadResults((dir / "absent").string(), &warnings)->empty());
  fs::remove_all(dir);
}

// A file written before a column was added: rows appended later (by an older writer in this version's
// columns, or by this one) read back, and the file is upgraded to the current header.
TEST(ResultsCsvTest, WriterUpgradesAnOlderHeaderAndKeepsEveryRow) {
  const fs::path dir = TempDir("csv_old");
  const std::string path = (dir / ResultsFileName(0, 1)).string();
  {
    std::ofstream old(path);
    old << "method,prompt,seed,ok,reward\n"
        << "sds,a red cube,1,1,2.5\n"
        << CsvRow(Finished("psd", "a red cube", 1, false, 4));  // this version's columns under the old header
  }
  std::vector<std::string> warnings;
  auto before = ReadResults(dir.string(), &warnings);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->size(), 2u);
  EXPECT_TRUE(warnings.empty());
  {
    auto w = ResultsWriter::Open(path);
    ASSERT_TRUE(w.ok()) << w.status();
    RunResult r = Finished("sds", "a blue cone", 2, false, 1);
    r.settings = "all.tau=2";
    ASSERT_TRUE((*w)->Append(r).ok());
  }
  auto text = ReadFileToString(path);
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(absl::StartsWith(*text, CsvHeader())) << *text;
  auto rows = ReadResults(dir.string(), &warnings);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_TRUE(warnings.empty());
  EXPECT_DOUBLE_EQ((*rows)[0].reward, 2.5);
  EXPECT_EQ((*rows)[1].method, "psd");
  EXPECT_EQ((*rows)[2].settings, "all.tau=2");
  fs::remove_all(dir);
}

TEST(StatsTest, MeanAndStandardError) {
  MeanSe s = Summarize({1, 2, 3, std::nan("")});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.mean, 2);
  EXPECT_NEAR(s.se, 1 / std::sqrt(3.0), 1e-12);
  EXPECT_EQ(FormatMeanSe(s, 2), "2.00 ± 0.58");
  EXPECT_EQ(FormatMeanSe(Summarize({0.5}), 1, 100), "50.0");
  EXPECT_EQ(FormatMeanSe(Summarize({}), 1), "–");
}

TEST(SummaryTest, PairsEachMethodWithSdsOnPromptAndSeed) {
  std::vector<RunResult> results = {
      Finished("sds", "a red cube", 1, false, 1), Finished("sds", "a red cube", 2, false, 2),
      Finished("psd", "a red cube", 1, false, 2), Finished("psd", "a red cube", 2, false, 4),
      Finished("psd", "a blue cube", 1, false, 100),  // no SDS partner: in the means, not the deltas
  };
  RunResult failed = Finished("psd", "a red torus", 1, true, 0);
  failed.ok = false;
  failed.error = "boom";
  results.push_back(failed);
  const std::string md = SummaryMarkdown(Deduplicate(results), ChooseGridLayout(results), {}, {});
  EXPECT_TRUE(absl::StrContains(md, "| psd | 2 | 1.500 ± 0.500 | 0.750 ± 0.250 | 0.0 ± 0.0 |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| psd | 3/3 | 35.333 ± 32.338 |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| psd | 0/1 | – |")) << md;  // held-out: the failed run
  EXPECT_TRUE(absl::StrContains(md, "psd 'a red torus' seed 1: boom")) << md;
}

TEST(SummaryTest, DeduplicatePrefersAFinishedRow) {
  RunResult failed = Finished("sds", "a red cube", 1, false, 0);
  failed.ok = false;
  const RunResult ok = Finished("sds", "a red cube", 1, false, 5);
  const std::vector<RunResult> d = Deduplicate({failed, ok, Finished("sds", "a red cube", 1, false, 7)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].reward, 5);
}

TEST(GridTest, LayoutPutsHeldOutFirstAndSpreadsSeenPrompts) {
  std::vector<RunResult> results;
  const std::vector<std::string> prompts = *ParsePrompts("all");
  for (const std::string& p : prompts) {
    results.push_back(Finished("psd", p, 2, *IsHeldOutPrompt(p), 0));
    results.push_back(Finished("sds", p, 2, *IsHeldOutPrompt(p), 0));
  }
  results.push_back(Finished("sds", "a red cube", 3, false, 0));
  const GridLayout layout = ChooseGridLayout(results, 6);
  EXPECT_EQ(layout.seed, 2u);
  ASSERT_EQ(layout.prompts.size(), 12u);
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(*IsHeldOutPrompt(layout.prompts[i])) << layout.prompts[i];
  for (int i = 6; i < 12; ++i) EXPECT_FALSE(*IsHeldOutPrompt(layout.prompts[i])) << layout.prompts[i];
  EXPECT_EQ(layout.methods, (std::vector<std::string>{"sds", "psd"}));
}

TEST(EvalConfigTest, ScalesStepsThenAppliesSettings) {
  auto c = EvalConfig(Quality::kDraft, GuidanceMethod::kPsd, 0.5, {"all.lambda_pref=0.25", "coarse.steps=7"});
  ASSERT_TRUE(c.ok()) << c.status();
  const PipelineConfig preset = PresetConfig(Quality::kDraft, GuidanceMethod::kPsd);
  EXPECT_EQ(c->coarse.steps, 7);
  EXPECT_EQ(c->geometry.steps, preset.geometry.steps / 2);
  EXPECT_DOUBLE_EQ(c->texture.guidance.lambda_pref, 0.25);
  auto bad = EvalConfig(Quality::kDraft, GuidanceMethod::kPsd, 1, {"coarse.bogus=1"});
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "coarse.bogus")) << bad.status();
}

// The whole tool on CPU: 2 runs of 3 steps each, a resume that finds nothing to do, the summary.
TEST(EvalEndToEndTest, RunsResumesAndSummarizes) {
  const fs::path out = TempDir("e2e");
  RunCommandOptions o;
  o.pack_dir = tinyworld::DefaultPackDir();
  o.settings.quality = Quality::kDraft;
  o.settings.steps_scale = 0.005;  // 1 step per stage
  o.settings.out_dir = out.string();
  o.methods = "sds,reward_gradient";
  o.prompts = "a red torus";
  o.seeds = 1;
  o.shard = "0/1";
  ASSERT_EQ(RunEvaluation(o), kExitDone);
  std::vector<std::string> warnings;
  auto rows = ReadResults(out.string(), &warnings);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  for (const RunResult& r : *rows) {
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.steps, 3);
    EXPECT_TRUE(r.held_out);
    EXPECT_FALSE(std::isnan(r.reward) || std::isnan(r.reward_eval) || std::isnan(r.delta_e));
    EXPECT_TRUE(fs::exists(out / r.glb)) << r.glb;
  }
  ASSERT_EQ(RunEvaluation(o), kExitDone);  // resumes: nothing left
  EXPECT_EQ(ReadResults(out.string(), &warnings)->size(), 2u);
  o.settings.settings = {"all.guidance_scale=5"};  // another experiment in the same folder is refused
  EXPECT_EQ(RunEvaluation(o), kExitFailed);
  o.settings.settings = {};
  o.settings.steps_scale = 0.5;
  EXPECT_EQ(RunEvaluation(o), kExitFailed);

  ASSERT_TRUE(WriteSummary(out.string(), 16).ok());
  auto md = ReadFileToString((out / "summary.md").string());
  ASSERT_TRUE(md.ok());
  EXPECT_TRUE(absl::StrContains(*md, "| reward_gradient | 1 |")) << *md;
  auto grid = ReadPng((out / "grid.png").string());
  ASSERT_TRUE(grid.ok());
  EXPECT_EQ(grid->size(0), 16 + 2 * 2);      // one row
  EXPECT_EQ(grid->size(1), 3 * 16 + 4 * 2);  // ground truth + 2 methods
  fs::remove_all(out);
}

}  // namespace
}  // namespace psd3d::eval
