-- Join a visitor to an event's queue, idempotently.
-- KEYS[1] state  KEYS[2] waiting  KEYS[3] prequeue  KEYS[4] seen  KEYS[5] active
-- ARGV[1] visitor  ARGV[2] now_ms  ARGV[3] 1 if the event has not opened yet  ARGV[4] OFFSET
-- Returns {kind, place}: kind is "waiting", "prequeue" or "admitted"; place 0 when unknown.
local visitor = ARGV[1]
local now = tonumber(ARGV[2])
local place = redis.call('ZSCORE', KEYS[2], visitor)
if place then
  redis.call('ZADD', KEYS[4], now, visitor)
  return {'waiting', place}
end
if redis.call('ZSCORE', KEYS[5], visitor) then
  return {'admitted', '0'}
end
-- Before the shuffle seed exists, early arrivals wait unordered; once it exists the
-- pre-queue is frozen and everyone else queues behind it in arrival order.
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[1], 'shuffle_seed') == 0 then
  redis.call('SADD', KEYS[3], visitor)
  redis.call('ZADD', KEYS[4], now, visitor)
  return {'prequeue', '0'}
end
if redis.call('SISMEMBER', KEYS[3], visitor) == 1 then
  return {'prequeue', '0'}
end
local n = redis.call('HINCRBY', KEYS[1], 'next_place', 1)
place = tonumber(ARGV[4]) + n
redis.call('ZADD', KEYS[2], place, visitor)
redis.call('ZADD', KEYS[4], now, visitor)
return {'waiting', tostring(place)}
