-- Idempotent cancel. QUEUED: cancelled at once. RUNNING: CANCELLING, and the worker is told through its
-- control list. Anything else: unchanged.
-- ARGV: prefix, id, now_ms, maxlen, retention_s
-- Returns {'NOTFOUND'} | {'OK', state_after}
local id, now, maxlen, retention_s = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local st = redis.call('HGET', job_key(id), 'state')
if not st then return {'NOTFOUND'} end
if st == 'QUEUED' then
  terminate(id, 'CANCELLED', now, maxlen, retention_s, 'cancelled while queued', nil)
  return {'OK', 'CANCELLED'}
end
if st == 'RUNNING' then
  redis.call('HSET', job_key(id), 'state', 'CANCELLING', 'update_ms', now)
  redis.call('RPUSH', ctl_key(id), 'cancel')
  local attempt = redis.call('HGET', job_key(id), 'attempt')
  emit(id, maxlen, {'type', 'state', 'state', 'CANCELLING', 'attempt', attempt, 'reason', 'cancel requested'})
  return {'OK', 'CANCELLING'}
end
return {'OK', st}
