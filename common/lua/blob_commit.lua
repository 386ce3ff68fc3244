-- Fenced, atomic publish of a staged blob. Artifacts are listed on the job and announced in its event
-- log; the checkpoint replaces the previous one.
-- ARGV: prefix, id, token, now_ms, maxlen, name, size, sha256, content_type, step
-- Returns {'OK', state} | {'LOST', state} | {'SIZE', staged_size}
local id, token, now, maxlen, name = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local size, sha, ctype, step = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local st, cur = fenced(id, token)
if not st then return {'LOST', cur} end
local sk = blob_key(id, name) .. ':staging:' .. token
local staged = redis.call('STRLEN', sk)
if staged ~= tonumber(size) then return {'SIZE', tostring(staged)} end
if staged == 0 then redis.call('SET', blob_key(id, name), '') else redis.call('RENAME', sk, blob_key(id, name)) end
redis.call('PERSIST', blob_key(id, name))
if name == CHECKPOINT then
  redis.call('HSET', job_key(id), 'ckpt_step', step, 'update_ms', now)
else
  redis.call('HSET', art_key(id), name, size .. '\t' .. sha .. '\t' .. ctype)
  emit(id, maxlen, {'type', 'artifact', 'name', name, 'size', size, 'sha256', sha, 'content_type', ctype})
end
return {'OK', st}
