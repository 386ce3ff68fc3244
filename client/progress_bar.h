// A progress bar for a running job on stderr. On a terminal it redraws one line in place; otherwise
// (logs, CI) it prints a line per stage change and per 10% of overall progress, not one per step.
#pragma once

#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d::cli {

class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool interactive);
  ~ProgressBar();  // ends the bar's line so that later output starts on a fresh one

  bool interactive() const { return interactive_; }
  void Update(const v1::JobEvent::Progress& progress);
  // Writes a line to `os` (stdout or stderr) without tearing the bar: erase, print, redraw.
  void PrintLine(std::ostream& os, absl::string_view line);

 private:
  void Draw();
  void Erase();

  std::ostream& out_;
  const bool interactive_;
  std::string line_;  // the bar as last rendered; empty before the first update
  bool drawn_ = false;
  v1::Stage stage_ = v1::STAGE_UNSPECIFIED;
  int decile_ = -1;
};

}  // namespace psd3d::cli
