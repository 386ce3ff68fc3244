// The contract between the worker runtime and a generation engine. The runtime owns queueing, leases,
// fencing, cancellation and persistence; the engine owns the optimization. The PSD engine, the CLI's
// local mode and the tests' deterministic engine all implement Engine.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

enum class StopReason {
  kNone,
  kCancelled,  // CancelJob: stop now, no checkpoint needed
  kShutdown,   // SIGTERM: save a checkpoint, then stop
  kLeaseLost,  // another worker may own the job: stop, write nothing
};

struct StepReport {
  v1::Stage stage = v1::STAGE_UNSPECIFIED;
  int step = 0;         // 1-based within the stage
  int total_steps = 0;  // of the stage
  float progress = 0;   // 0..1 over the whole job
  double loss = 0;
  double reward = 0;
  double step_seconds = 0;
};

// The API's progress message for a step report (without the ETA, which only the runtime knows).
inline v1::JobEvent::Progress ToProgress(const StepReport& r) {
  v1::JobEvent::Progress p;
  p.set_stage(r.stage);
  p.set_step(r.step);
  p.set_total_steps(r.total_steps);
  p.set_progress(r.progress);
  p.mutable_metrics()->set_loss(r.loss);
  p.mutable_metrics()->set_reward(r.reward);
  p.mutable_metrics()->set_step_seconds(r.step_seconds);
  return p;
}

class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual const std::string& job_id() const = 0;
  virtual int attempt() const = 0;
  virtual const v1::JobSpec& spec() const = 0;

  // Call once per optimization step. Reports progress (rate-limited) and returns non-OK when the
  // engine must stop: CANCELLED for cancel or shutdown, ABORTED when the lease was lost. The engine
  // returns that status from Run (after SaveCheckpoint when stop_reason() is kShutdown).
  virtual absl::Status Step(const StepReport& report) = 0;
  virtual StopReason stop_reason() const = 0;

  virtual absl::Status Preview(const std::string& png, int view, v1::Stage stage, int step) = 0;
  virtual void Log(v1::JobEvent::Log::Level level, const std::string& message) = 0;

  // True when the checkpoint policy (every N minutes) asks for a checkpoint now. Engines also
  // checkpoint at stage boundaries and on shutdown.
  virtual bool CheckpointDue() const = 0;
  virtual absl::Status SaveCheckpoint(const std::string& bytes, int step) = 0;
  virtual absl::Status PutArtifact(const std::string& name, const std::string& bytes,
                                   const std::string& content_type) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;
  // Runs one attempt. `checkpoint` is the last SaveCheckpoint of an earlier attempt, or null.
  // Returns OK when the job is done (artifacts stored); the status from Step when told to stop;
  // INVALID_ARGUMENT or FAILED_PRECONDITION when the job can never succeed (not retried); any other
  // error is retried with backoff until the job's attempts are spent.
  virtual absl::Status Run(JobContext& ctx, const std::string* checkpoint) = 0;
};

}  // namespace psd3d
