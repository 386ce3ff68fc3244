// psd3d.v1.GenerationService. Unary calls and downloads run on gRPC's sync thread pool (they are short
// Redis round trips); WatchJob uses the callback API so thousands of open streams cost no threads.
#pragma once

#include "common/job_queue.h"
#include "common/validation.h"
#include "psd3d/v1/generation.grpc.pb.h"
#include "server/server_metrics.h"
#include "server/watch_hub.h"

namespace psd3d {

class GenerationServiceImpl final
    : public v1::GenerationService::WithCallbackMethod_WatchJob<v1::GenerationService::Service> {
 public:
  struct Options {
    ValidationLimits limits;
    JobQueue::SubmitLimits submit;
    int max_watch_backlog = 1000;  // events queued for one slow watcher before it is cut off
  };
  GenerationServiceImpl(JobQueue* queue, WatchHub* hub, ServerMetrics* metrics, Options options)
      : queue_(queue), hub_(hub), metrics_(metrics), options_(std::move(options)) {}

  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req, v1::Job* resp) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req, v1::Job* resp) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req, v1::ListJobsResponse* resp) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req, v1::Job* resp) override;
  grpc::Status DownloadArtifact(grpc::ServerContext* ctx, const v1::DownloadArtifactRequest* req,
                                grpc::ServerWriter<v1::ArtifactChunk>* writer) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override;

 private:
  JobQueue* queue_;
  WatchHub* hub_;
  ServerMetrics* metrics_;
  Options options_;
};

grpc::Status ToGrpc(const absl::Status& s);

}  // namespace psd3d
