-- Moves delayed jobs whose backoff has passed into the queue, and redelivers or dead-letters jobs whose
-- lease expired (their worker died or hung). Idempotent; run by workers before claiming and by the
-- server's housekeeping.
-- ARGV: prefix, now_ms, limit, base_backoff_ms, max_backoff_ms, retention_s, maxlen
-- Returns {promoted, redelivered, failed, cancelled}
local now, limit, base_ms, max_ms = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local retention_s, maxlen = ARGV[6], ARGV[7]
local promoted, redelivered, failed, cancelled = 0, 0, 0, 0
local due = redis.call('ZRANGE', K_DELAYED, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for i = 1, #due do
  local id = due[i]
  redis.call('ZREM', K_DELAYED, id)
  local v = redis.call('HMGET', job_key(id), 'state', 'priority', 'enq_ms')
  if v[1] == 'QUEUED' then
    redis.call('ZADD', K_QUEUE, queue_score(v[2], v[3]), id)
    redis.call('RPUSH', K_NOTIFY, id)
    promoted = promoted + 1
  end
end
if promoted > 0 then redis.call('LTRIM', K_NOTIFY, -64, -1) end
local expired = redis.call('ZRANGE', K_LEASES, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for i = 1, #expired do
  local id = expired[i]
  local v = redis.call('HMGET', job_key(id), 'state', 'attempt', 'worker', 'stage', 'step')
  if v[1] == 'RUNNING' or v[1] == 'CANCELLING' then
    local err = {'UNAVAILABLE', 'worker ' .. (v[3] or '?') .. ' lost its lease on attempt ' .. v[2],
      v[4] or '0', v[5] or '0'}
    local r = requeue_or_fail(id, now, maxlen, retention_s, backoff_for(v[2], base_ms, max_ms),
      'lease expired', err)
    if r == 'QUEUED' then redelivered = redelivered + 1
    elseif r == 'FAILED' then failed = failed + 1
    else cancelled = cancelled + 1 end
  else
    redis.call('ZREM', K_LEASES, id)
  end
end
return {promoted, redelivered, failed, cancelled}
