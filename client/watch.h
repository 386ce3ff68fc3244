// Follows a job's event stream to the end, resuming from the last cursor when the stream drops.
#pragma once

#include <string>

#include "client/context.h"

namespace psd3d::cli {

struct WatchOptions {
  std::string after_cursor;  // empty: from the oldest retained event
  std::string previews_dir;  // where preview PNGs go; empty: not saved
  // true (watch): every event on stdout, as text or JSON. false (submit --wait): only the progress bar
  // and the non-progress events on stderr, so stdout stays for the result.
  bool print_events = true;
};

// kExitOk when the job SUCCEEDED, kExitJobFailed when it ended FAILED or CANCELLED, otherwise the exit
// code of the error, which has been reported.
int WatchJob(const Context& ctx, const std::string& job_id, const WatchOptions& options);

}  // namespace psd3d::cli
