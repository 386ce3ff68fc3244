#include "client/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/names.h"
#include "client/output.h"

namespace psd3d::cli {
namespace {

constexpr int kBarWidth = 16;  // the whole line fits 80 columns

std::string Render(const v1::JobEvent::Progress& p) {
  const float fraction = std::clamp(p.progress(), 0.0f, 1.0f);
  const int filled = static_cast<int>(std::lround(fraction * kBarWidth));
  const int digits = static_cast<int>(absl::StrCat(p.total_steps()).size());  // keeps the bar from jumping
  std::string line =
      absl::StrFormat("%-8s %*d/%d [%s%s] %5.1f%% loss %.4f reward %.4f", StageName(p.stage()), digits, p.step(),
                      p.total_steps(), std::string(filled, '#'), std::string(kBarWidth - filled, '-'), fraction * 100,
                      p.metrics().loss(), p.metrics().reward());
  if (p.has_eta()) absl::StrAppend(&line, " ETA ", FormatDuration(p.eta()));
  return line;
}

// Keeps the bar on one terminal row: a wrapped line could not be redrawn with '\r'.
int TerminalColumns() {
  winsize ws{};
  return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

}  // namespace

ProgressBar::ProgressBar(std::ostream& out, bool interactive) : out_(out), interactive_(interactive) {}

ProgressBar::~ProgressBar() {
  if (drawn_) out_ << "\n" << std::flush;
}

void ProgressBar::Update(const v1::JobEvent::Progress& progress) {
  line_ = Render(progress);
  if (interactive_) {
    Draw();
    return;
  }
  const int decile = static_cast<int>(std::clamp(progress.progress(), 0.0f, 1.0f) * 10);
  if (progress.stage() != stage_ || decile > decile_) {
    out_ << line_ << "\n" << std::flush;
    stage_ = progress.stage();
    decile_ = decile;
  }
}

void ProgressBar::PrintLine(std::ostream& os, absl::string_view line) {
  Erase();
  os << line << "\n" << std::flush;
  if (interactive_ && !line_.empty()) Draw();
}

void ProgressBar::Draw() {
  const size_t max = static_cast<size_t>(TerminalColumns() - 1);
  out_ << "\r" << line_.substr(0, max) << "\x1b[K" << std::flush;
  drawn_ = true;
}

void ProgressBar::Erase() {
  if (!drawn_) return;
  out_ << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

}  // namespace psd3d::cli
