-- Fenced progress write: updates job fields and appends one event.
-- ARGV: prefix, id, token, now_ms, maxlen, n_hash_fields, hash k/v pairs..., event k/v pairs...
-- Returns {'OK', state} | {'LOST', state}
local id, token, now, maxlen, nh = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
local h = {'update_ms', now}
for i = 7, 6 + 2 * nh do h[#h + 1] = ARGV[i] end
redis.call('HSET', job_key(id), unpack(h))
local ev = {}
for i = 7 + 2 * nh, #ARGV do ev[#ev + 1] = ARGV[i] end
if #ev > 0 then emit(id, maxlen, ev) end
return {'OK', st}
