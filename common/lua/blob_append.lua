-- Fenced chunked upload of a blob (artifact or checkpoint) into a per-lease staging key.
-- ARGV: prefix, id, token, name, offset, bytes
-- Returns {'OK', new_size} | {'LOST', state} | {'OFFSET', current_size}
local id, token, name, offset, data = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
local sk = blob_key(id, name) .. ':staging:' .. token
if offset == 0 then redis.call('DEL', sk) end
local size = redis.call('STRLEN', sk)
if size ~= offset then return {'OFFSET', tostring(size)} end
size = redis.call('APPEND', sk, data)
redis.call('EXPIRE', sk, 86400)
return {'OK', tostring(size)}
