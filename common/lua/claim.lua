-- Takes the best queued job (priority, then age) and leases it to a worker with a fresh fencing token.
-- ARGV: prefix, now_ms, worker, lease_ms, maxlen
-- Returns nil | {id, token, attempt, submit_bytes, has_checkpoint, enq_ms}
local now, worker, lease_ms, maxlen = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
while true do
  local top = redis.call('ZPOPMIN', K_QUEUE)
  if #top == 0 then return nil end
  local id = top[1]
  local jk = job_key(id)
  local v = redis.call('HMGET', jk, 'state', 'attempt', 'submit', 'enq_ms', 'start_ms')
  if v[1] == 'QUEUED' then
    local attempt = tonumber(v[2]) + 1
    local token = tostring(redis.call('INCR', K_FENCE))
    redis.call('HSET', jk, 'state', 'RUNNING', 'attempt', attempt, 'token', token, 'worker', worker,
      'update_ms', now)
    if not v[5] or v[5] == '' then redis.call('HSET', jk, 'start_ms', now) end
    redis.call('ZADD', K_LEASES, tonumber(now) + tonumber(lease_ms), id)
    redis.call('DEL', ctl_key(id))
    emit(id, maxlen, {'type', 'state', 'state', 'RUNNING', 'attempt', attempt,
      'reason', 'claimed by ' .. worker})
    local ckpt = redis.call('EXISTS', blob_key(id, CHECKPOINT))
    return {id, token, attempt, v[3], ckpt, v[4]}
  end
end
