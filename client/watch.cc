#include "client/watch.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/errors.h"
#include "client/names.h"
#include "client/output.h"
#include "client/progress_bar.h"

namespace psd3d::cli {
namespace {

constexpr int kMaxRetries = 10;  // consecutive failed reconnects before giving up

// Worth a reconnect: the connection dropped, the server restarted or shut down (UNAVAILABLE), or it
// ended a slow reader's stream (RESOURCE_EXHAUSTED). Broken transports surface as UNKNOWN or INTERNAL.
bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::ABORTED;
}

std::string PreviewFileName(const v1::JobEvent::Preview& p) {
  return absl::StrCat(StageName(p.stage()), "_", p.step(), "_",
                      p.view() < 0 ? std::string("grid") : absl::StrCat("view", p.view()), ".png");
}

// Shows and saves the events of one watch, across reconnects.
class EventSink {
 public:
  EventSink(const Context& ctx, const WatchOptions& options)
      : ctx_(ctx), options_(options), bar_(std::cerr, isatty(STDERR_FILENO) == 1) {}

  ~EventSink() {
    if (previews_ > 0) {
      bar_.PrintLine(std::cerr, absl::StrCat("saved ", previews_, previews_ == 1 ? " preview" : " previews", " in ",
                                             options_.previews_dir));
    }
  }

  void Handle(const v1::JobEvent& e) {
    // The bar replaces progress lines on a terminal, and always when stdout is kept for the result.
    const bool on_bar = e.has_progress() && (!options_.print_events || bar_.interactive());
    if (options_.print_events && (ctx_.json || !on_bar)) {
      bar_.PrintLine(std::cout, ctx_.json ? ToJson(e) : FormatEvent(e));
    } else if (!options_.print_events && !e.has_progress() && !e.has_preview()) {
      bar_.PrintLine(std::cerr, FormatEvent(e));
    }
    if (on_bar) bar_.Update(e.progress());
    if (e.has_preview() && !options_.previews_dir.empty()) SavePreview(e.preview());
  }

  void Note(absl::string_view line) { bar_.PrintLine(std::cerr, line); }

 private:
  void SavePreview(const v1::JobEvent::Preview& p) {
    const std::filesystem::path path = std::filesystem::path(options_.previews_dir) / PreviewFileName(p);
    std::error_code ec;  // a directory that cannot be made shows up as the write failing
    std::filesystem::create_directories(options_.previews_dir, ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(p.png().data(), static_cast<std::streamsize>(p.png().size()));
    out.close();
    // A preview that cannot be saved is worth a warning, not the end of the watch.
    if (!out) {
      Note(absl::StrCat("psd3d: warning: cannot write preview ", path.string()));
      return;
    }
    ++previews_;
  }

  const Context& ctx_;
  const WatchOptions& options_;
  ProgressBar bar_;
  int previews_ = 0;
};

// Streams events until the job's terminal event, reconnecting after the last cursor when the stream
// drops. Returns what ended the watch otherwise. The bar is gone when this returns, so that an error
// message starts on a line of its own.
grpc::Status Follow(const Context& ctx, const std::string& what, const std::string& job_id, const WatchOptions& options,
                    std::string* cursor, v1::Job::State* final_state) {
  EventSink sink(ctx, options);
  bool streamed = false;  // only a stream that once worked is retried; a first failure is reported at once
  int failures = 0;
  for (;;) {
    grpc::ClientContext rpc;
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_cursor(*cursor);
    auto reader = ctx.stub->WatchJob(&rpc, request);
    v1::JobEvent event;
    bool received = false;
    while (reader->Read(&event)) {
      received = true;
      *cursor = event.cursor();
      sink.Handle(event);
      if (event.has_state() && IsTerminal(event.state().state())) *final_state = event.state().state();
    }
    grpc::Status status = reader->Finish();
    if (IsTerminal(*final_state)) return grpc::Status::OK;
    if (received) {
      streamed = true;
      failures = 0;
    }
    if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended before the job did");
    if (!streamed || !Retryable(status.error_code()) || ++failures > kMaxRetries) return status;
    const absl::Duration backoff = std::min(absl::Milliseconds(500) * (1 << (failures - 1)), absl::Seconds(10));
    sink.Note(absl::StrCat("psd3d: ", what, failures == 1 ? ": stream lost (" : ": reconnect failed (",
                           status.error_message(), "); resuming after cursor ", *cursor, " in ",
                           absl::FormatDuration(backoff), " (retry ", failures, "/", kMaxRetries, ")"));
    absl::SleepFor(backoff);
  }
}

}  // namespace

int WatchJob(const Context& ctx, const std::string& job_id, const WatchOptions& options) {
  const std::string what = absl::StrCat("watch ", job_id);
  std::string cursor = options.after_cursor;
  v1::Job::State final_state = v1::Job::STATE_UNSPECIFIED;
  const grpc::Status status = Follow(ctx, what, job_id, options, &cursor, &final_state);
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
    return Fail(kExitOther, absl::StrCat(what, ": the events after cursor ", cursor,
                                         " were already dropped by the server's event retention. `psd3d get ", job_id,
                                         "` shows the job's current state; `psd3d watch ", job_id,
                                         "` without --after replays the events still retained"));
  }
  if (!status.ok()) return ReportRpcError(ctx, what, status);
  return final_state == v1::Job::SUCCEEDED ? kExitOk : kExitJobFailed;
}

}  // namespace psd3d::cli
