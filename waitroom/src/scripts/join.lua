-- Join a visitor to an event's queue, idempotently; in safety-net mode, straight through when
-- nobody is waiting and the admission budget allows.
-- KEYS[1] state  KEYS[2] waiting  KEYS[3] prequeue  KEYS[4] active
-- KEYS[5] presence bitmap for post-opening places, this window
-- KEYS[6] presence bitmap for pre-queue places, this window
-- KEYS[7] sessions  KEYS[8] admits
-- ARGV[1] visitor  ARGV[2] 1 if the event has not opened yet  ARGV[3] OFFSET
-- ARGV[4] presence bitmap lifetime (ms)
-- ARGV[5] 1 if a fan may pass straight through (safety-net mode, open, not sold out)
-- ARGV[6] now_ms  ARGV[7] rate_per_minute  ARGV[8] max_active  ARGV[9] session_ttl_ms
-- ARGV[10] idle_ms  ARGV[11] max_elapsed_ms
-- Returns {kind, place}: kind is "waiting", "prequeue", "admitted" (already), or "passed"
-- (admitted by this join, at `place`); place 0 when unknown.
local visitor = ARGV[1]
local offset = tonumber(ARGV[3])

local function seen(place)
  local key, index = KEYS[6], place
  if place > offset then key, index = KEYS[5], place - offset end
  redis.call('SETBIT', key, index, 1)
  redis.call('PEXPIRE', key, ARGV[4])
end

local place = redis.call('ZSCORE', KEYS[2], visitor)
if place then
  seen(tonumber(place))
  return {'waiting', place}
end
if redis.call('ZSCORE', KEYS[4], visitor) then
  return {'admitted', '0'}
end
-- Before the shuffle seed exists, early arrivals wait unordered; once it exists the
-- pre-queue is frozen and everyone else queues behind it in arrival order.
if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[1], 'shuffle_seed') == 0 then
  redis.call('SADD', KEYS[3], visitor)
  return {'prequeue', '0'}
end
if redis.call('SISMEMBER', KEYS[3], visitor) == 1 then
  return {'prequeue', '0'}
end

-- Safety net: the pre-queue placed (the worker's shuffle at opening), nobody waiting, a whole
-- admission in the budget the worker's admit script spends (the same `last_tick_ms` and
-- `carry`, minted by the clock only forwards), and room under the cap. Then the fan is
-- admitted here, at the next place, which becomes the watermark (with nobody waiting, every
-- earlier place is at or below it).
if ARGV[5] == '1' and redis.call('HEXISTS', KEYS[1], 'shuffled') == 1
    and redis.call('ZCARD', KEYS[2]) == 0 then
  local now = tonumber(ARGV[6])
  local rate = tonumber(ARGV[7])
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_tick_ms') or now)
  local elapsed = math.min(math.max(now - last, 0), tonumber(ARGV[11]))
  local carry = tonumber(redis.call('HGET', KEYS[1], 'carry') or '0')
  local budget = rate * elapsed / 60000 + carry
  local room = tonumber(ARGV[8]) - redis.call('ZCOUNT', KEYS[4], now, '+inf')
  if budget >= 1 and room >= 1 then
    local n = redis.call('HINCRBY', KEYS[1], 'next_place', 1)
    place = offset + n
    local left = math.min(budget - 1, rate * tonumber(ARGV[11]) / 60000)
    redis.call('HSET', KEYS[1], 'last_tick_ms', math.max(last, now), 'carry', tostring(left),
      'watermark', string.format('%.0f', place))
    redis.call('ZADD', KEYS[4], now + math.min(tonumber(ARGV[9]), tonumber(ARGV[10])), visitor)
    redis.call('ZADD', KEYS[7], now, visitor)
    redis.call('HINCRBY', KEYS[1], 'admitted_total', 1)
    redis.call('HINCRBY', KEYS[1], 'passed_through_total', 1)
    redis.call('ZADD', KEYS[8], now, now .. ':1:0:' .. visitor)
    return {'passed', string.format('%.0f', place)}
  end
end

local n = redis.call('HINCRBY', KEYS[1], 'next_place', 1)
place = offset + n
redis.call('ZADD', KEYS[2], place, visitor)
seen(place)
return {'waiting', string.format('%.0f', place)}
