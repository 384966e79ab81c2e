-- Join a visitor to an event's queue, idempotently; in safety-net mode, straight through when
-- nobody is waiting and the admission budget allows. Visitors minted for their joins may join
-- together, in one call: each gets what it would joining alone, one after another.
-- KEYS[1] state  KEYS[2] waiting  KEYS[3] prequeue  KEYS[4] active
-- KEYS[5] presence bitmap for post-opening places, this window
-- KEYS[6] presence bitmap for pre-queue places, this window
-- KEYS[7] sessions  KEYS[8] admits
-- ARGV[1] visitor  ARGV[2] 1 if the event has not opened yet  ARGV[3] OFFSET
-- ARGV[4] presence bitmap lifetime (ms)
-- ARGV[5] 1 if a fan may pass straight through (safety-net mode, open, not sold out)
-- ARGV[6] now_ms  ARGV[7] rate_per_minute  ARGV[8] max_active  ARGV[9] session_ttl_ms
-- ARGV[10] idle_ms  ARGV[11] max_elapsed_ms
-- ARGV[12] 1 if the visitor was minted for this join (it cannot be in line, admitted or in the
-- pre-queue yet: the three lookups that make a join idempotent are skipped)
-- ARGV[13..] more visitors minted for their joins, joining after ARGV[1] in this order (a batch:
-- only with ARGV[12] 1 and ARGV[5] 0)
-- Returns {kind, place} for each visitor in order, flattened: kind is "waiting", "prequeue",
-- "admitted" (already), or "passed" (admitted by this join, at `place`); place 0 when unknown.
local visitor = ARGV[1]
local offset = tonumber(ARGV[3])
local visitors = {visitor}
for i = 13, #ARGV do visitors[#visitors + 1] = ARGV[i] end
if #visitors > 1 and (ARGV[12] ~= '1' or ARGV[5] == '1') then
  return redis.error_reply('joins together are only of minted visitors, none passing through')
end
local function all(kind)
  local out = {}
  for i = 1, #visitors do out[2 * i - 1], out[2 * i] = kind, '0' end
  return out
end

-- Mark `place` seen in this window's bitmap; the bitmap's key.
local function mark(place)
  local key, index = KEYS[6], place
  if place > offset then key, index = KEYS[5], place - offset end
  redis.call('SETBIT', key, index, 1)
  return key
end

local function seen(place)
  redis.call('PEXPIRE', mark(place), ARGV[4])
end

local fresh = ARGV[12] == '1'
local place
if not fresh then
  place = redis.call('ZSCORE', KEYS[2], visitor)
  if place then
    seen(tonumber(place))
    return {'waiting', place}
  end
  if redis.call('ZSCORE', KEYS[4], visitor) then
    return {'admitted', '0'}
  end
end
-- Before the shuffle seed exists, early arrivals wait unordered; once it exists the
-- pre-queue is frozen and everyone else queues behind it in arrival order.
if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[1], 'shuffle_seed') == 0 then
  redis.call('SADD', KEYS[3], unpack(visitors))
  return all('prequeue')
end
if not fresh and redis.call('SISMEMBER', KEYS[3], visitor) == 1 then
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

-- In line, in this order, at the next places (one for each visitor).
local last = offset + redis.call('HINCRBY', KEYS[1], 'next_place', #visitors)
local members, out, key = {}, {}, nil
for i, v in ipairs(visitors) do
  place = last - #visitors + i
  members[2 * i - 1], members[2 * i] = place, v
  out[2 * i - 1], out[2 * i] = 'waiting', string.format('%.0f', place)
  key = mark(place)
end
-- Every new place is past the offset: all are in the one bitmap, given its lifetime once.
redis.call('PEXPIRE', key, ARGV[4])
redis.call('ZADD', KEYS[2], unpack(members))
return out
