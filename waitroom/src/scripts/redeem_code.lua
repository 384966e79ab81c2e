-- Redeem an access code for a visitor, atomically: a single-use code admits exactly one fan
-- however many race for it. Wrong codes are counted per client address and per event a
-- minute; past either limit no code is even looked at.
-- KEYS[1] codes  KEYS[2] code_batch  KEYS[3] batches  KEYS[4] batch_used
-- KEYS[5] fails on the event this minute  KEYS[6] fails from this client this minute
-- KEYS[7] priority lane  KEYS[8] active  KEYS[9] sessions  KEYS[10] state  KEYS[11] admits
-- KEYS[12] waiting  KEYS[13] prequeue
-- ARGV[1] code hash  ARGV[2] now_ms  ARGV[3] client limit  ARGV[4] event limit
-- ARGV[5] visitor  ARGV[6] max_active  ARGV[7] session_ttl_ms  ARGV[8] idle_ms
-- ARGV[9] 1 if the event is open (a skip code may admit at once)
-- Returns {outcome, detail}: {'limited', ms to wait}, {'wrong', why}, {'admitted', batch},
-- {'lane', batch}.
local now = tonumber(ARGV[2])
local function limited(key, limit)
  return tonumber(redis.call('GET', key) or '0') >= tonumber(limit)
end
if limited(KEYS[6], ARGV[3]) or limited(KEYS[5], ARGV[4]) then
  return {'limited', tostring(60000 - now % 60000)}
end
local function wrong(why)
  for _, key in ipairs({KEYS[5], KEYS[6]}) do
    redis.call('INCR', key)
    redis.call('PEXPIRE', key, 120000)
  end
  return {'wrong', why}
end
local left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if left < 0 then return wrong('unknown') end
local batch = redis.call('HGET', KEYS[2], ARGV[1])
local meta = redis.call('HGET', KEYS[3], batch or '')
if not meta then return wrong('unknown') end
local effect, expires, revoked = string.match(meta, '^(%a+)|(%d+)|(%d)$')
if revoked == '1' then return wrong('revoked') end
if tonumber(expires) <= now then return wrong('expired') end
if left == 0 then return wrong('used') end
redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
redis.call('HINCRBY', KEYS[4], batch, 1)
-- The fan leaves the general line (or the pre-queue), if it was in it.
redis.call('ZREM', KEYS[12], ARGV[5])
redis.call('SREM', KEYS[13], ARGV[5])
local room = tonumber(ARGV[6]) - redis.call('ZCOUNT', KEYS[8], now, '+inf')
if effect == 'skip' and ARGV[9] == '1' and room >= 1 then
  redis.call('ZADD', KEYS[8], now + math.min(tonumber(ARGV[7]), tonumber(ARGV[8])), ARGV[5])
  redis.call('ZADD', KEYS[9], now, ARGV[5])
  redis.call('HINCRBY', KEYS[10], 'admitted_total', 1)
  redis.call('ZADD', KEYS[11], now, now .. ':1:0:' .. ARGV[5])
  return {'admitted', batch}
end
-- The priority lane: a skip code that met a full cap (or a closed door) goes to its head.
local score = now
if effect == 'skip' then score = now - 10000000000000 end
redis.call('ZADD', KEYS[7], score, ARGV[5])
return {'lane', batch}
