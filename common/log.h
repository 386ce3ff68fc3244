// Structured, quiet-by-default logging: one logfmt line per record on stderr.
//   PSD3D_LOG(kInfo, "job claimed", {{"job", id}, {"attempt", absl::StrCat(n)}});
// The level threshold comes from SetLogLevel (binaries wire it to --log_level; default: warning).
#pragma once

#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>

#include "absl/strings/string_view.h"

namespace psd3d {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using LogField = std::pair<absl::string_view, std::string>;

void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warning" or "error"; false when unknown.
bool ParseLogLevel(absl::string_view text, LogLevel* level);
bool LogEnabled(LogLevel level);
void LogRecord(LogLevel level, absl::string_view component, absl::string_view message,
               std::initializer_list<LogField> fields = {});

}  // namespace psd3d

#define PSD3D_LOG(level, component, message, ...)                                      \
  do {                                                                                 \
    if (::psd3d::LogEnabled(::psd3d::LogLevel::level))                                 \
      ::psd3d::LogRecord(::psd3d::LogLevel::level, component, message, ##__VA_ARGS__); \
  } while (0)
