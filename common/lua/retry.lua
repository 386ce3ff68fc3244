-- Fenced hand-back after a retryable engine error: requeued after a backoff, or FAILED (dead-letter)
-- when attempts are spent, or CANCELLED when a cancel was requested meanwhile.
-- ARGV: prefix, id, token, now_ms, maxlen, retention_s, backoff_base_ms, backoff_max_ms, err_code,
--       err_msg, err_stage, err_step
-- Returns {'OK', new_state} | {'LOST', state}
local id, token, now, maxlen, retention_s = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
local attempt = redis.call('HGET', job_key(id), 'attempt')
local r = requeue_or_fail(id, now, maxlen, retention_s, backoff_for(attempt, ARGV[7], ARGV[8]),
  'attempt ' .. attempt .. ' failed', {ARGV[9], ARGV[10], ARGV[11], ARGV[12]})
return {'OK', r}
