-- Fenced graceful hand-back (worker shutdown): the job goes back to the head of its priority class
-- without spending an attempt; its checkpoint stays for the next worker.
-- ARGV: prefix, id, token, now_ms, maxlen, retention_s, reason
-- Returns {'OK', new_state} | {'LOST', state}
local id, token, now, maxlen, retention_s, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
if st == 'CANCELLING' then
  terminate(id, 'CANCELLED', now, maxlen, retention_s, 'cancelled (' .. reason .. ')', nil)
  return {'OK', 'CANCELLED'}
end
local jk = job_key(id)
local v = redis.call('HMGET', jk, 'attempt', 'priority', 'enq_ms')
local attempt = tonumber(v[1]) - 1
redis.call('HSET', jk, 'state', 'QUEUED', 'attempt', attempt, 'token', '', 'worker', '', 'update_ms', now)
redis.call('ZREM', K_LEASES, id)
redis.call('ZADD', K_QUEUE, queue_score(v[2], v[3]), id)
redis.call('RPUSH', K_NOTIFY, id)
redis.call('LTRIM', K_NOTIFY, -64, -1)
emit(id, maxlen, {'type', 'state', 'state', 'QUEUED', 'attempt', attempt, 'reason', reason})
return {'OK', 'QUEUED'}
