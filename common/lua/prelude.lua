-- Shared by every psd3d script (prepended at build time). Keys are built from a prefix passed as
-- ARGV[1]; psd3d targets a single Redis primary (or a replicated primary), not Redis Cluster.
local P = ARGV[1]
local function job_key(id) return P .. 'job:' .. id end
local function ev_key(id) return P .. 'job:' .. id .. ':ev' end
local function ctl_key(id) return P .. 'job:' .. id .. ':ctl' end
local function art_key(id) return P .. 'job:' .. id .. ':art' end
local function blob_key(id, name) return P .. 'job:' .. id .. ':blob:' .. name end
local K_QUEUE, K_DELAYED, K_LEASES = P .. 'queue', P .. 'delayed', P .. 'leases'
local K_INDEX, K_DEAD, K_FENCE, K_NOTIFY = P .. 'index', P .. 'dead', P .. 'fence', P .. 'notify'
local K_STATS = P .. 'stats'
local CHECKPOINT = '@checkpoint'

-- Queue score: priority first (0..9, higher first), then enqueue time (older first). Exact in a double.
local function queue_score(priority, enq_ms)
  return (9 - tonumber(priority)) * 4398046511104 + tonumber(enq_ms)
end

-- Appends one event to the job's log; the stream id is the client-visible cursor. Retention drops the
-- oldest events with XDEL (not MAXLEN) so max-deleted-entry-id tells exactly which cursors lost events.
local function emit(id, maxlen, fields)
  local key = ev_key(id)
  local args = {'XADD', key, '*'}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  local eid = redis.call(unpack(args))
  local over = redis.call('XLEN', key) - tonumber(maxlen)
  if over > 0 then
    local old = redis.call('XRANGE', key, '-', '+', 'COUNT', over)
    local ids = {'XDEL', key}
    for i = 1, #old do ids[#ids + 1] = old[i][1] end
    redis.call(unpack(ids))
  end
  return eid
end

-- Returns the job state when (token) holds the lease, else nil and the current state.
local function fenced(id, token)
  local v = redis.call('HMGET', job_key(id), 'state', 'token')
  if (v[1] == 'RUNNING' or v[1] == 'CANCELLING') and v[2] == token then return v[1] end
  return nil, v[1] or 'MISSING'
end

-- Every key of a finished job expires together after the retention period.
local function expire_job(id, retention_s)
  local ttl = tonumber(retention_s)
  redis.call('EXPIRE', job_key(id), ttl)
  redis.call('EXPIRE', ev_key(id), ttl)
  redis.call('EXPIRE', art_key(id), ttl)
  redis.call('DEL', ctl_key(id), blob_key(id, CHECKPOINT))
  local names = redis.call('HKEYS', art_key(id))
  for i = 1, #names do redis.call('EXPIRE', blob_key(id, names[i]), ttl) end
end

-- Moves a job into a terminal state. err = {code, message, stage, step} or nil.
local function terminate(id, state, now, maxlen, retention_s, reason, err)
  local jk = job_key(id)
  local fields = {'state', state, 'end_ms', now, 'update_ms', now, 'token', '', 'worker', ''}
  if err then
    for _, f in ipairs({'err_code', err[1], 'err_msg', err[2], 'err_stage', err[3], 'err_step', err[4]}) do
      fields[#fields + 1] = f
    end
  end
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZREM', K_QUEUE, id)
  redis.call('ZREM', K_DELAYED, id)
  redis.call('ZREM', K_LEASES, id)
  local attempt = redis.call('HGET', jk, 'attempt')
  local ev = {'type', 'state', 'state', state, 'attempt', attempt, 'reason', reason}
  if err then
    for _, f in ipairs({'err_code', err[1], 'err_msg', err[2], 'err_stage', err[3], 'err_step', err[4]}) do
      ev[#ev + 1] = f
    end
  end
  emit(id, maxlen, ev)
  redis.call('HINCRBY', K_STATS, 'outcome:' .. state, 1)
  if state == 'FAILED' then redis.call('ZADD', K_DEAD, now, id) end
  expire_job(id, retention_s)
end

-- A job that lost its worker or failed retryably: back to the queue after a backoff, or dead-lettered
-- once its attempts are spent. A job whose cancel was requested ends CANCELLED instead.
local function requeue_or_fail(id, now, maxlen, retention_s, backoff_ms, reason, err)
  local jk = job_key(id)
  local v = redis.call('HMGET', jk, 'state', 'attempt', 'max_attempts')
  if v[1] == 'CANCELLING' then
    terminate(id, 'CANCELLED', now, maxlen, retention_s, 'cancelled (' .. reason .. ')', nil)
    return 'CANCELLED'
  end
  if tonumber(v[2]) >= tonumber(v[3]) then
    local e = {err[1], err[2] .. ' (attempt ' .. v[2] .. ' of ' .. v[3] .. '; no attempts left)', err[3], err[4]}
    terminate(id, 'FAILED', now, maxlen, retention_s, reason, e)
    return 'FAILED'
  end
  redis.call('HSET', jk, 'state', 'QUEUED', 'token', '', 'worker', '', 'update_ms', now,
    'err_code', err[1], 'err_msg', err[2], 'err_stage', err[3], 'err_step', err[4])
  redis.call('ZREM', K_LEASES, id)
  redis.call('ZADD', K_DELAYED, tonumber(now) + tonumber(backoff_ms), id)
  emit(id, maxlen, {'type', 'state', 'state', 'QUEUED', 'attempt', v[2], 'reason', reason,
    'err_code', err[1], 'err_msg', err[2], 'err_stage', err[3], 'err_step', err[4]})
  redis.call('HINCRBY', K_STATS, 'redeliveries', 1)
  return 'QUEUED'
end

local function backoff_for(attempt, base_ms, max_ms)
  local b = tonumber(base_ms) * (2 ^ (tonumber(attempt) - 1))
  if b > tonumber(max_ms) then b = tonumber(max_ms) end
  return math.floor(b)
end
