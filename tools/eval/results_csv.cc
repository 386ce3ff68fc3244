#include "tools/eval/results_csv.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "common/file_io.h"

namespace psd3d::eval {
namespace {

// One column: its header name, how a result writes it and how a field reads back into a result.
struct Column {
  const char* name;
  std::function<std::string(const RunResult&)> write;
  std::function<bool(absl::string_view, RunResult*)> read;  // false: unreadable field
};

Column Text(const char* name, std::string RunResult::*m) {
  return {name, [m](const RunResult& r) { return r.*m; },
          [m](absl::string_view f, RunResult* r) { return (r->*m = std::string(f)), true; }};
}

Column Bool(const char* name, bool RunResult::*m) {
  return {name, [m](const RunResult& r) { return std::string(r.*m ? "1" : "0"); },
          [m](absl::string_view f, RunResult* r) {
            if (f != "0" && f != "1") return false;
            r->*m = f == "1";
            return true;
          }};
}

// Absent values (NaN) are empty fields.
Column Double(const char* name, double RunResult::*m) {
  return {name, [m](const RunResult& r) { return Present(r.*m) ? absl::StrFormat("%.6g", r.*m) : std::string(); },
          [m](absl::string_view f, RunResult* r) {
            if (f.empty()) return (r->*m = kAbsent), true;
            return absl::SimpleAtod(f, &(r->*m));
          }};
}

template <typename Int>
Column Integer(const char* name, Int RunResult::*m) {
  return {name, [m](const RunResult& r) { return absl::StrCat(r.*m); },
          [m](absl::string_view f, RunResult* r) { return absl::SimpleAtoi(f, &(r->*m)); }};
}

const std::vector<Column>& Columns() {
  static const std::vector<Column> columns = {
      Text("method", &RunResult::method),
      Text("prompt", &RunResult::prompt),
      Text("subject", &RunResult::subject),
      Bool("held_out", &RunResult::held_out),
      Integer("seed", &RunResult::seed),
      Text("quality", &RunResult::quality),
      Double("steps_scale", &RunResult::steps_scale),
      Text("settings", &RunResult::settings),
      Text("device", &RunResult::device),
      Integer("steps", &RunResult::steps),
      Bool("ok", &RunResult::ok),
      Text("error", &RunResult::error),
      Double("reward", &RunResult::reward),
      Double("reward_eval", &RunResult::reward_eval),
      Bool("shape_correct", &RunResult::shape_correct),
      Double("shape_accuracy", &RunResult::shape_accuracy),
      Double("expected_iou", &RunResult::expected_iou),
      Text("shape", &RunResult::shape),
      Bool("color_correct", &RunResult::color_correct),
      Double("color_accuracy", &RunResult::color_accuracy),
      Double("delta_e", &RunResult::delta_e),
      Text("nearest_color", &RunResult::nearest_color),
      Double("floater_share", &RunResult::floater_share),
      Integer("faces", &RunResult::faces),
      Double("wall_s", &RunResult::wall_s),
      Text("glb", &RunResult::glb),
  };
  return columns;
}

std::string Quote(std::string field) {
  std::replace(field.begin(), field.end(), '\n', ' ');
  std::replace(field.begin(), field.end(), '\r', ' ');
  if (field.find_first_of(",\"") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The fields of one line (RFC 4180 quoting; rows never span lines here). False for an unterminated quote.
bool SplitLine(absl::string_view line, std::vector<std::string>* fields) {
  fields->assign(1, std::string());
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        fields->back() += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        fields->back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields->emplace_back();
    } else {
      fields->back() += c;
    }
  }
  return !quoted;
}

std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    if (end == absl::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

bool IsResultsFile(const std::string& name) {
  return absl::StartsWith(name, "runs-") && absl::EndsWith(name, ".csv");
}

}  // namespace

std::string CsvHeader() {
  std::vector<std::string> names;
  for (const Column& c : Columns()) names.push_back(c.name);
  return absl::StrJoin(names, ",") + "\n";
}

std::string CsvRow(const RunResult& r) {
  std::vector<std::string> fields;
  for (const Column& c : Columns()) fields.push_back(Quote(c.write(r)));
  return absl::StrJoin(fields, ",") + "\n";
}

absl::StatusOr<std::vector<RunResult>> ParseResultsCsv(absl::string_view text, const std::string& source,
                                                       std::vector<std::string>* warnings) {
  std::vector<RunResult> rows;
  const std::vector<absl::string_view> lines = Lines(text);
  if (lines.empty()) return rows;
  std::vector<std::string> header;
  if (!SplitLine(lines[0], &header)) return absl::InvalidArgumentError(absl::StrCat(source, ": unreadable header"));
  // Which known column each field of the file fills (null: a column this version does not know).
  std::vector<const Column*> readers;
  for (const std::string& name : header) {
    const Column* found = nullptr;
    for (const Column& c : Columns())
      if (name == c.name) found = &c;
    readers.push_back(found);
  }
  for (const char* required : {"method", "prompt", "seed", "ok"}) {
    if (std::find(header.begin(), header.end(), required) == header.end()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": the header has no '", required, "' column"));
    }
  }
  // A row of this version's columns under an older header (appended before the file was upgraded).
  std::vector<const Column*> current;
  std::vector<std::string> current_names;
  for (const Column& c : Columns()) current.push_back(&c), current_names.push_back(c.name);
  std::vector<std::string> fields;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string where = absl::StrCat(source, ":", i + 1, ": ");
    const bool split = SplitLine(lines[i], &fields);
    const bool own = split && fields.size() == header.size();
    if (!own && !(split && fields.size() == current.size())) {
      if (warnings) warnings->push_back(where + "skipped (torn or malformed row)");
      continue;
    }
    const std::vector<const Column*>& cols = own ? readers : current;
    const std::vector<std::string>& names = own ? header : current_names;
    RunResult r;
    bool readable = true;
    for (size_t f = 0; f < fields.size() && readable; ++f) {
      if (cols[f] != nullptr && !cols[f]->read(fields[f], &r)) {
        if (warnings) warnings->push_back(absl::StrCat(where, "skipped (bad ", names[f], " '", fields[f], "')"));
        readable = false;
      }
    }
    if (readable) rows.push_back(std::move(r));
  }
  return rows;
}

std::string ResultsFileName(int64_t shard_index, int64_t shard_count) {
  return absl::StrCat("runs-", shard_index, "of", shard_count, ".csv");
}

absl::StatusOr<std::vector<RunResult>> ReadResults(const std::string& dir, std::vector<std::string>* warnings) {
  namespace fs = std::filesystem;
  std::vector<RunResult> all;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return all;
  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && IsResultsFile(name)) files.push_back(e.path().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  for (const std::string& path : files) {
    absl::StatusOr<std::string> text = ReadFileToString(path);
    if (!text.ok()) return text.status();
    absl::StatusOr<std::vector<RunResult>> rows = ParseResultsCsv(*text, path, warnings);
    if (!rows.ok()) return rows.status();
    all.insert(all.end(), std::make_move_iterator(rows->begin()), std::make_move_iterator(rows->end()));
  }
  return all;
}

absl::StatusOr<std::unique_ptr<ResultsWriter>> ResultsWriter::Open(const std::string& path) {
  // What is there already decides whether a header or a line end is due.
  absl::StatusOr<std::string> existing = ReadFileToString(path);
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();
  std::string before = existing.ok() ? *existing : std::string();
  const std::string header = CsvHeader();
  const size_t eol = before.find('\n');
  if (!before.empty() && (eol == std::string::npos || before.compare(0, eol + 1, header) != 0)) {
    // A torn header starts over; a file of an older version (other columns) is rewritten under this
    // version's header first, so that new rows and old ones read back alike.
    std::vector<RunResult> rows;
    if (eol != std::string::npos) {
      std::vector<std::string> warnings;
      absl::StatusOr<std::vector<RunResult>> old = ParseResultsCsv(before, path, &warnings);
      if (!old.ok()) return old.status();
      rows = *std::move(old);
    }
    before = header;
    for (const RunResult& r : rows) before += CsvRow(r);
    if (absl::Status s = WriteFileAtomically(path, before); !s.ok()) return s;
  }
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return absl::InternalError(absl::StrCat("opening ", path, ": ", std::strerror(errno)));
  std::unique_ptr<ResultsWriter> w(new ResultsWriter(path, f));
  std::string prefix;
  if (before.empty()) prefix = header;
  else if (before.back() != '\n') prefix = "\n";  // a torn row: let the next one start on its own line
  if (!prefix.empty() && (std::fputs(prefix.c_str(), f) < 0 || std::fflush(f) != 0)) {
    return absl::InternalError(absl::StrCat("writing ", path, ": ", std::strerror(errno)));
  }
  return w;
}

ResultsWriter::~ResultsWriter() { std::fclose(file_); }

absl::Status ResultsWriter::Append(const RunResult& r) {
  const std::string row = CsvRow(r);
  if (std::fputs(row.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    return absl::InternalError(absl::StrCat("writing ", path_, ": ", std::strerror(errno)));
  }
  fsync(fileno(file_));  // best effort: the row should survive the machine going away, too
  return absl::OkStatus();
}

}  // namespace psd3d::eval
