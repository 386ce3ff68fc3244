#include "common/event_log.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/job_codec.h"

namespace psd3d {

absl::StatusOr<std::string> EventLog::CheckCursor(RedisConnection& conn, const std::string& job_id,
                                                  const std::string& cursor) const {
  unsigned long long ms = 0, seq = 0;
  if (!cursor.empty() && !ParseStreamId(cursor, &ms, &seq)) {
    return absl::InvalidArgumentError(absl::StrCat("after_cursor: '", cursor, "' is not a cursor"));
  }
  auto info = conn.Command({"XINFO", "STREAM", keys_.Events(job_id)});
  if (!info.ok()) {
    if (absl::StrContains(info.status().message(), "no such key")) {
      return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist (or has expired)"));
    }
    return info.status();
  }
  FieldMap f;
  for (size_t i = 0; i + 1 < info->elements.size(); i += 2) {
    const RedisReply& v = info->elements[i + 1];
    if (v.type != RedisReply::Type::kArray) f[info->elements[i].AsString()] = v.AsString();
  }
  if (cursor.empty()) return std::string("0-0");
  const std::string& last = f["last-generated-id"];
  if (StreamIdLess(last, cursor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_cursor: '", cursor, "' is newer than the job's latest event ", last));
  }
  const std::string& deleted = f["max-deleted-entry-id"];
  if (!deleted.empty() && StreamIdLess(cursor, deleted)) {
    return absl::OutOfRangeError(absl::StrCat(
        "after_cursor: events after '", cursor, "' were dropped by retention (oldest lost: up to ", deleted,
        "); fetch the job with GetJob and watch again with an empty cursor"));
  }
  return cursor;
}

absl::StatusOr<std::vector<v1::JobEvent>> EventLog::ReadAfter(RedisConnection& conn, const std::string& job_id,
                                                              const std::string& after, int count) const {
  auto r = conn.Command({"XRANGE", keys_.Events(job_id), "(" + after, "+", "COUNT", absl::StrCat(count)});
  if (!r.ok()) return r.status();
  std::vector<v1::JobEvent> out;
  out.reserve(r->elements.size());
  for (const auto& e : r->elements) {
    auto ev = EventFromEntry(job_id, e);
    if (!ev.ok()) return ev.status();
    out.push_back(*std::move(ev));
  }
  return out;
}

bool EventLog::IsTerminalEvent(const v1::JobEvent& ev) {
  return ev.has_state() && IsTerminal(ev.state().state());
}

}  // namespace psd3d
