// Rendering for people (aligned text, local times, human sizes) and for scripts (protobuf's JSON mapping).
#pragma once

#include <cstdint>
#include <string>

#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d::cli {

// One line of JSON with the proto field names and every field, zero values included (a queue_position
// of 0 means "next to run" and should not vanish).
std::string ToJson(const google::protobuf::Message& message);

std::string FormatJob(const v1::Job& job);  // the multi-line summary of `get`
std::string JobTableHeader();               // `list`: a header line, then one row per job
std::string FormatJobRow(const v1::Job& job);
std::string FormatEvent(const v1::JobEvent& event);  // one line per event for `watch`

std::string FormatBytes(int64_t bytes);                           // "1.5 MiB"
std::string FormatDuration(const google::protobuf::Duration& d);  // "1h02m", "3m05s", "42s"
std::string FormatMetrics(const v1::JobMetrics& metrics);         // "loss 0.1234  reward 0.5678"

}  // namespace psd3d::cli
