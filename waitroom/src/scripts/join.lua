-- Join a visitor to an event's queue, idempotently.
-- KEYS[1] state  KEYS[2] waiting  KEYS[3] prequeue  KEYS[4] active
-- KEYS[5] presence bitmap for post-opening places, this window
-- KEYS[6] presence bitmap for pre-queue places, this window
-- ARGV[1] visitor  ARGV[2] 1 if the event has not opened yet  ARGV[3] OFFSET
-- ARGV[4] presence bitmap lifetime (ms)
-- Returns {kind, place}: kind is "waiting", "prequeue" or "admitted"; place 0 when unknown.
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
local n = redis.call('HINCRBY', KEYS[1], 'next_place', 1)
place = offset + n
redis.call('ZADD', KEYS[2], place, visitor)
seen(place)
return {'waiting', string.format('%.0f', place)}
