-- One admission tick for one event, run only by the lease holder (checked here, so a
-- replica that lost its lease mid-tick cannot admit).
-- KEYS[1] state  KEYS[2] waiting  KEYS[3] active  KEYS[4] admits  KEYS[5] lease
-- KEYS[6..9] presence bitmaps: post-opening places this window and the last, pre-queue
-- places this window and the last  KEYS[10] sessions  KEYS[11] the priority lane (fans with
-- an access code, admitted before the general queue within the same budget and cap)
-- KEYS[12] the event's seat figures (booking-core's)  KEYS[13] the event's history
-- ARGV[1] worker id  ARGV[2] now_ms  ARGV[3] rate_per_minute  ARGV[4] max_active
-- ARGV[5] session_ttl_ms  ARGV[6] OFFSET  ARGV[7] max_elapsed_ms  ARGV[8] admitting (1/0)
-- ARGV[9] idle_ms: a fan admitted holds a slot this long (at most the session) unless booking
-- activity keeps it (see session.rs); the session itself is recorded in KEYS[10].
-- ARGV[10] history_interval_ms: how often a point of the event's history is recorded.
-- Returns {admitted, active, waiting, watermark, dropped}.
-- Every command here counts against Redis's budget on every tick of every event, so each
-- value is read once: the state's fields in one HMGET, each count once while it cannot change.
if redis.call('GET', KEYS[5]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER')
end
local now = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local max_active = tonumber(ARGV[4])
local offset = tonumber(ARGV[6])

-- Slots that lapsed (session over, or idle) free themselves; ended sessions are forgotten.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now - tonumber(ARGV[5]))

-- The budget: rate × elapsed + what was left over, never more than the active cap allows.
-- Safety-net joins spend the same budget (join.lua); the clock only moves forwards, so two
-- clocks a little apart never mint the same time twice.
local state = redis.call('HMGET', KEYS[1], 'last_tick_ms', 'carry', 'watermark', 'hist_at')
local last = tonumber(state[1] or now)
local elapsed = math.min(math.max(now - last, 0), tonumber(ARGV[7]))
local carry = tonumber(state[2] or '0')
local budget = rate * elapsed / 60000 + carry
local allowed = math.floor(budget)
local active = redis.call('ZCARD', KEYS[3])
local room = max_active - active
local n = allowed
if room < n then n = room end
if n < 0 then n = 0 end
if ARGV[8] ~= '1' then n = 0 end
-- The waitlist: never more fans at a time than the seats available beyond what admitted fans
-- not yet holding could take (figures under 10 s old; without them the rate and cap rule).
local seats = redis.call('HMGET', KEYS[12], 'available', 'holders', 'at')
if seats[3] and now - tonumber(seats[3]) <= 10000 then
  local unheld = active - tonumber(seats[2])
  if unheld < 0 then unheld = 0 end
  local spare = tonumber(seats[1]) - unheld
  if spare < n then n = spare end
  if n < 0 then n = 0 end
end

-- Was this place seen polling this window or the last? A visitor who was not has left:
-- dropped here, at its turn, so its slot goes to the next fan.
local function present(place)
  if place > offset then
    local i = place - offset
    return redis.call('GETBIT', KEYS[6], i) == 1 or redis.call('GETBIT', KEYS[7], i) == 1
  end
  return redis.call('GETBIT', KEYS[8], place) == 1 or redis.call('GETBIT', KEYS[9], place) == 1
end

local admitted, dropped, checks = 0, 0, 0
local watermark = tonumber(state[3] or '0')
local slot_until = now + math.min(tonumber(ARGV[5]), tonumber(ARGV[9]))
-- The priority lane first. Its fans hold no place in the line, so the watermark is not
-- theirs to move; the lane is small (one entry per code use), and each is admitted.
while admitted < n do
  local head = redis.call('ZPOPMIN', KEYS[11], 1)
  if #head == 0 then break end
  redis.call('ZADD', KEYS[3], slot_until, head[1])
  redis.call('ZADD', KEYS[10], now, head[1])
  admitted = admitted + 1
end
while admitted < n and checks < n * 4 + 100 do
  local head = redis.call('ZPOPMIN', KEYS[2], 1)
  if #head == 0 then break end
  checks = checks + 1
  local visitor, place = head[1], tonumber(head[2])
  if place > watermark then watermark = place end
  if present(place) then
    redis.call('ZADD', KEYS[3], slot_until, visitor)
    redis.call('ZADD', KEYS[10], now, visitor)
    admitted = admitted + 1
  else
    dropped = dropped + 1
  end
end
-- Unused budget carries over only within one admission's worth, so a pause or an empty
-- queue never banks a burst. Up to one whole admission is kept, so a safety-net join
-- (join.lua) finds it between ticks and a quiet event lets its next fan straight through.
local left = budget - admitted
if admitted < allowed or ARGV[8] ~= '1' then left = math.min(left, 1) end
if left < 0 then left = 0 end
redis.call('HSET', KEYS[1], 'last_tick_ms', math.max(last, now), 'carry', tostring(left), 'watermark', string.format('%.0f', watermark))
if admitted > 0 then
  redis.call('HINCRBY', KEYS[1], 'admitted_total', admitted)
end
if admitted + dropped > 0 then
  redis.call('ZADD', KEYS[4], now, now .. ':' .. admitted .. ':' .. dropped)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 300000)
end
if dropped > 0 then
  redis.call('HINCRBY', KEYS[1], 'dropped_total', dropped)
end
-- The counts after this tick's admissions (nothing below changes them).
active = redis.call('ZCARD', KEYS[3])
local waiting = redis.call('ZCARD', KEYS[2])
-- A point of the event's history, every history_interval_ms, kept an hour.
local hist_at = tonumber(state[4] or '0')
if now - hist_at >= tonumber(ARGV[10]) then
  local totals = redis.call('HMGET', KEYS[1], 'admitted_total', 'dropped_total')
  local figures = redis.call('HMGET', KEYS[12], 'held', 'sold')
  local point = table.concat({now, waiting + redis.call('ZCARD', KEYS[11]),
    active, max_active, totals[1] or 0, totals[2] or 0,
    figures[1] or 0, figures[2] or 0, rate}, '|')
  redis.call('ZADD', KEYS[13], now, point)
  redis.call('ZREMRANGEBYSCORE', KEYS[13], '-inf', now - 3600000)
  redis.call('HSET', KEYS[1], 'hist_at', now)
end
return {admitted, active, waiting, string.format('%.0f', watermark), dropped}
