-- Extends the lease of the worker holding (token).
-- ARGV: prefix, id, token, now_ms, lease_ms
-- Returns {'OK', state} | {'LOST', state}
local id, token, now, lease_ms = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
redis.call('ZADD', K_LEASES, tonumber(now) + tonumber(lease_ms), id)
return {'OK', st}
