-- ARGV: prefix, id, now_ms, submit_bytes, priority, max_attempts, max_queue, request_id, fingerprint,
--       retention_s, maxlen
-- Returns {'OK', id} | {'EXISTS', id} | {'CONFLICT', id} | {'FULL', depth}
local id, now, submit, priority = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_attempts, max_queue, rid, fp = ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9]
local retention_s, maxlen = ARGV[10], ARGV[11]
local rkey = P .. 'req:' .. rid
if rid ~= '' then
  local prev = redis.call('HMGET', rkey, 'id', 'fp')
  if prev[1] and redis.call('EXISTS', job_key(prev[1])) == 1 then
    if prev[2] == fp then return {'EXISTS', prev[1]} end
    return {'CONFLICT', prev[1]}
  end
end
local depth = redis.call('ZCARD', K_QUEUE) + redis.call('ZCARD', K_DELAYED)
if depth >= max_queue then return {'FULL', tostring(depth)} end
redis.call('HSET', job_key(id), 'id', id, 'submit', submit, 'state', 'QUEUED', 'attempt', 0,
  'max_attempts', max_attempts, 'priority', priority, 'create_ms', now, 'enq_ms', now, 'update_ms', now,
  'request_id', rid)
redis.call('ZADD', K_QUEUE, queue_score(priority, now), id)
redis.call('ZADD', K_INDEX, 0, id)
emit(id, maxlen, {'type', 'state', 'state', 'QUEUED', 'attempt', 0, 'reason', 'submitted'})
redis.call('RPUSH', K_NOTIFY, id)
redis.call('LTRIM', K_NOTIFY, -64, -1)
if rid ~= '' then
  redis.call('HSET', rkey, 'id', id, 'fp', fp)
  redis.call('EXPIRE', rkey, retention_s)
end
redis.call('HINCRBY', K_STATS, 'submitted', 1)
return {'OK', id}
