// Translation between Redis records and API messages: the job hash → Job, stream entries ↔ JobEvent.
// Field names here are the ones the Lua scripts write.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/redis_client.h"
#include "psd3d/v1/generation.pb.h"

namespace psd3d {

using FieldMap = absl::flat_hash_map<std::string, std::string>;
using FieldList = std::vector<std::pair<std::string, std::string>>;

// HGETALL-style reply (flat array of pairs) → map.
FieldMap ToFieldMap(const RedisReply& flat_pairs);

// Job hash → Job. Does not fill queue_position or eta (they need other keys).
absl::StatusOr<v1::Job> JobFromFields(const FieldMap& fields);

// One XRANGE/XREAD entry ([id, [k, v, ...]]) → JobEvent.
absl::StatusOr<v1::JobEvent> EventFromEntry(const std::string& job_id, const RedisReply& entry);

// Stream fields for the events a worker writes.
FieldList ProgressEventFields(const v1::JobEvent::Progress& p);
FieldList PreviewEventFields(const v1::JobEvent::Preview& p);
FieldList LogEventFields(const v1::JobEvent::Log& l);
// Job hash fields that mirror the latest progress event.
FieldList ProgressJobFields(const v1::JobEvent::Progress& p);

// "1700000000000-3" → true; stream ids are the cursors clients see.
bool ParseStreamId(const std::string& id, unsigned long long* ms, unsigned long long* seq);
// Strict ordering of stream ids (a < b).
bool StreamIdLess(const std::string& a, const std::string& b);

std::string StateName(v1::Job::State s);
v1::Job::State StateFromName(const std::string& name);
bool IsTerminal(v1::Job::State s);

}  // namespace psd3d
