#include "tools/eval/summary.h"

#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "tools/eval/run_list.h"
#include "tools/eval/stats.h"
#include "worker/formats/png.h"

namespace psd3d::eval {
namespace {

constexpr char kBaseline[] = "sds";

using Metric = std::function<double(const RunResult&)>;
double Bit(bool b) { return b ? 1.0 : 0.0; }

// A metric column: header, value per run, decimals and display scale (100: percentages).
struct MetricColumn {
  const char* header;
  const char* delta_header;  // null: not in the paired table
  Metric value;
  int decimals;
  double scale;
};

const std::vector<MetricColumn>& MetricColumns() {
  static const std::vector<MetricColumn> columns = {
      {"reward", "Δ reward", [](const RunResult& r) { return r.reward; }, 3, 1},
      {"reward_eval", "Δ reward_eval", [](const RunResult& r) { return r.reward_eval; }, 3, 1},
      {"shape acc %", "Δ shape acc (pp)", [](const RunResult& r) { return Bit(r.shape_correct); }, 1, 100},
      {"color acc %", "Δ color acc (pp)", [](const RunResult& r) { return Bit(r.color_correct); }, 1, 100},
      {"ΔE", "Δ ΔE", [](const RunResult& r) { return r.delta_e; }, 2, 1},
      {"floaters %", nullptr, [](const RunResult& r) { return r.floater_share; }, 2, 100},
      {"wall s", nullptr, [](const RunResult& r) { return r.wall_s; }, 1, 1},
  };
  return columns;
}

// Method names in the report's order: the five known ones first, others after, by name.
std::vector<std::string> MethodOrder(const std::vector<RunResult>& results) {
  std::set<std::string> present;
  for (const RunResult& r : results) present.insert(r.method);
  std::vector<std::string> order;
  for (GuidanceMethod m : AllMethods()) {
    const std::string name(GuidanceMethodName(m));
    if (present.erase(name)) order.push_back(name);
  }
  order.insert(order.end(), present.begin(), present.end());
  return order;
}

std::string Row(const std::vector<std::string>& cells) { return absl::StrCat("| ", absl::StrJoin(cells, " | "), " |\n"); }

std::string HeaderRow(const std::vector<std::string>& cells) {
  std::vector<std::string> rule(cells.size(), "---:");
  rule[0] = "---";
  return Row(cells) + Row(rule);
}

std::vector<const RunResult*> Select(const std::vector<RunResult>& results, const std::string& method, bool held_out) {
  std::vector<const RunResult*> out;
  for (const RunResult& r : results)
    if (r.method == method && r.held_out == held_out) out.push_back(&r);
  return out;
}

bool HasSplit(const std::vector<RunResult>& results, bool held_out) {
  for (const RunResult& r : results)
    if (r.held_out == held_out) return true;
  return false;
}

std::string MethodTable(const std::vector<RunResult>& results, const std::vector<std::string>& methods, bool held_out) {
  std::vector<std::string> header = {"method", "runs ok"};
  for (const MetricColumn& c : MetricColumns()) header.push_back(c.header);
  std::string md = HeaderRow(header);
  for (const std::string& m : methods) {
    const std::vector<const RunResult*> runs = Select(results, m, held_out);
    if (runs.empty()) continue;
    int64_t ok = 0;
    for (const RunResult* r : runs) ok += r->ok;
    std::vector<std::string> cells = {m, absl::StrCat(ok, "/", runs.size())};
    for (const MetricColumn& c : MetricColumns()) {
      std::vector<double> values;
      for (const RunResult* r : runs)
        if (r->ok) values.push_back(c.value(*r));
      cells.push_back(FormatMeanSe(Summarize(values), c.decimals, c.scale));
    }
    md += Row(cells);
  }
  return md;
}

// Paired differences (method − SDS) over the (prompt, seed) pairs both finished; "" when there are none.
std::string DeltaTable(const std::vector<RunResult>& results, const std::vector<std::string>& methods, bool held_out) {
  std::map<std::pair<std::string, uint64_t>, const RunResult*> baseline;
  for (const RunResult* r : Select(results, kBaseline, held_out))
    if (r->ok) baseline[{r->prompt, r->seed}] = r;
  std::vector<std::string> header = {"method", "pairs"};
  for (const MetricColumn& c : MetricColumns())
    if (c.delta_header) header.push_back(c.delta_header);
  std::string md;
  for (const std::string& m : methods) {
    if (m == kBaseline) continue;
    std::vector<std::pair<const RunResult*, const RunResult*>> pairs;
    for (const RunResult* r : Select(results, m, held_out)) {
      auto it = baseline.find({r->prompt, r->seed});
      if (r->ok && it != baseline.end()) pairs.push_back({r, it->second});
    }
    if (pairs.empty()) continue;
    if (md.empty()) md = HeaderRow(header);
    std::vector<std::string> cells = {m, absl::StrCat(pairs.size())};
    for (const MetricColumn& c : MetricColumns()) {
      if (!c.delta_header) continue;
      std::vector<double> d;
      for (const auto& [run, base] : pairs) d.push_back(c.value(*run) - c.value(*base));
      cells.push_back(FormatMeanSe(Summarize(d), c.decimals, c.scale));
    }
    md += Row(cells);
  }
  return md;
}

std::string Overview(const std::vector<RunResult>& results) {
  std::set<std::string> configs, devices, prompts, held_out;
  std::set<uint64_t> seeds;
  int64_t failed = 0;
  for (const RunResult& r : results) {
    configs.insert(absl::StrFormat("quality %s, steps ×%g%s", r.quality, r.steps_scale,
                                   r.settings.empty() ? "" : absl::StrCat(", --set ", r.settings)));
    devices.insert(r.device);
    prompts.insert(r.prompt);
    if (r.held_out) held_out.insert(r.prompt);
    seeds.insert(r.seed);
    failed += !r.ok;
  }
  std::vector<std::string> seed_list;
  for (uint64_t s : seeds) seed_list.push_back(absl::StrCat(s));
  std::string md = absl::StrFormat(
      "%d runs (%d failed): %d prompts (%d held out) × seeds {%s} × methods {%s}. Configuration: %s; device %s.\n",
      results.size(), failed, prompts.size(), held_out.size(), absl::StrJoin(seed_list, ", "),
      absl::StrJoin(MethodOrder(results), ", "), absl::StrJoin(configs, "; "), absl::StrJoin(devices, ", "));
  if (configs.size() > 1) md += "\n**Warning: these results mix configurations; the means below pool them.**\n";
  return md;
}

constexpr char kLegend[] =
    "Each cell is the mean over the finished runs ± its standard error (sample sd / √n; no ± with one run). "
    "The judge renders each run's exported GLB from its 8 cameras (one shared yaw): *reward* and "
    "*reward_eval* are the pack's training and held-back reward models' mean scores of those renders; "
    "*shape acc* and *color acc* are the shares of runs whose object the judge calls the prompt's shape "
    "(argmax of the mean silhouette IoU) and color (mean ΔE under the palette threshold); *ΔE* is the "
    "mean CIELAB ΔE76 to the prompt color's shaded reference (lower is better); *floaters* is the share "
    "of surface area outside the largest connected piece; *wall s* is optimization + export time per run. "
    "docs/eval.md says more.\n";

std::string GridSection(const GridLayout& grid, const std::vector<RunResult>& results) {
  std::set<std::string> held_out;
  for (const RunResult& r : results)
    if (r.held_out) held_out.insert(r.prompt);
  std::string md = absl::StrFormat(
      "## Picture grid (grid.png)\n\nSeed %d, each GLB rendered from azimuth %g°, elevation %g° like the tiny "
      "world. Columns, left to right: ground truth (the world's render of the subject), %s. Rows, top to "
      "bottom:\n\n",
      grid.seed, kGridAzimuthDeg, kGridElevationDeg, absl::StrJoin(grid.methods, ", "));
  for (size_t i = 0; i < grid.prompts.size(); ++i) {
    absl::StrAppend(&md, i + 1, ". ", grid.prompts[i], held_out.count(grid.prompts[i]) ? " (held out)" : "", "\n");
  }
  return md + "\nA light gray cell with a cross: no GLB for that run (listed under Notes).\n";
}

}  // namespace

std::vector<RunResult> Deduplicate(const std::vector<RunResult>& results) {
  std::vector<RunResult> out;
  std::map<std::string, size_t> at;
  for (const RunResult& r : results) {
    const std::string key = RunKey(r.method, r.prompt, r.seed);
    auto it = at.find(key);
    if (it == at.end()) {
      at[key] = out.size();
      out.push_back(r);
    } else if (!out[it->second].ok && r.ok) {
      out[it->second] = r;
    }
  }
  return out;
}

std::string SummaryMarkdown(const std::vector<RunResult>& results, const GridLayout& grid,
                            const std::vector<std::string>& grid_notes, const std::vector<std::string>& warnings) {
  const std::vector<std::string> methods = MethodOrder(results);
  std::string md = "# psd3d evaluation\n\n" + Overview(results) + "\n" + kLegend;
  for (bool held_out : {false, true}) {
    absl::StrAppend(&md, "\n## ", held_out ? "Held-out" : "Seen", " prompts\n\n",
                    HasSplit(results, held_out) ? MethodTable(results, methods, held_out) : "No runs.\n");
  }
  absl::StrAppend(&md, "\n## Against SDS, paired on (prompt, seed)\n\nEach cell: the mean over the (prompt, seed) "
                       "pairs where both runs finished of (method − SDS) ± its standard error; accuracies in "
                       "percentage points. Negative Δ ΔE is better.\n");
  for (bool held_out : {false, true}) {
    const std::string table = DeltaTable(results, methods, held_out);
    absl::StrAppend(&md, "\n### ", held_out ? "Held-out" : "Seen", " prompts\n\n",
                    table.empty() ? "No (prompt, seed) with both SDS and another method finished.\n" : table);
  }
  absl::StrAppend(&md, "\n", GridSection(grid, results));

  std::vector<std::string> failures;
  for (const RunResult& r : results)
    if (!r.ok) failures.push_back(absl::StrFormat("- %s '%s' seed %d: %s", r.method, r.prompt, r.seed, r.error));
  if (!failures.empty()) absl::StrAppend(&md, "\n## Failed runs\n\n", absl::StrJoin(failures, "\n"), "\n");
  if (!grid_notes.empty() || !warnings.empty()) {
    absl::StrAppend(&md, "\n## Notes\n\n");
    for (const auto* list : {&grid_notes, &warnings})
      for (const std::string& n : *list) absl::StrAppend(&md, "- ", n, "\n");
  }
  return md;
}

absl::Status WriteSummary(const std::string& out_dir, int64_t grid_cell) {
  std::vector<std::string> warnings;
  absl::StatusOr<std::vector<RunResult>> read = ReadResults(out_dir, &warnings);
  if (!read.ok()) return read.status();
  if (read->empty()) return absl::FailedPreconditionError(absl::StrCat("no runs-*.csv rows in ", out_dir));
  const std::vector<RunResult> results = Deduplicate(*read);
  const GridLayout grid = ChooseGridLayout(results);
  std::vector<std::string> notes;
  const at::Tensor image = RenderGrid(results, grid, out_dir, grid_cell, &notes);
  const std::filesystem::path dir(out_dir);
  if (absl::Status s = WritePng((dir / "grid.png").string(), image); !s.ok()) return s;
  return WriteFileAtomically((dir / "summary.md").string(), SummaryMarkdown(results, grid, notes, warnings));
}

}  // namespace psd3d::eval
