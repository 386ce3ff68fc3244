-- Fenced terminal transition by the worker holding the lease.
-- ARGV: prefix, id, token, now_ms, maxlen, retention_s, state (SUCCEEDED|CANCELLED|FAILED), reason,
--       err_code, err_msg, err_stage, err_step
-- Returns {'OK', state} | {'LOST', state}
local id, token, now, maxlen, retention_s = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local state, reason = ARGV[7], ARGV[8]
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
local err = nil
if ARGV[9] ~= '' then err = {ARGV[9], ARGV[10], ARGV[11], ARGV[12]} end
terminate(id, state, now, maxlen, retention_s, reason, err)
return {'OK', state}
