-- The reserve gate, one round trip per reserve attempt: does the visitor still hold its slot
-- under the event's active cap, is it within its per-visitor reserve allowance (a GCRA, the
-- same allowance as a bucket of `burst` refilled evenly, as governor computes it), and if
-- both, its slot is kept for the hold's life plus the idle time. Redis's own clock, so the
-- replicas' clocks do not matter.
-- KEYS[1] active  KEYS[2] the visitor's next-attempt due time
-- ARGV[1] visitor  ARGV[2] interval between attempts (ms)  ARGV[3] burst
-- ARGV[4] keep_ms (hold window + idle time)  ARGV[5] the session's end (ms)
-- Returns -1 when the slot is gone (bought, left, idle or session over), 0 when the attempt
-- may go ahead, else the ms to wait.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if slot <= now then
  return -1
end
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local due = tonumber(redis.call('GET', KEYS[2]) or now)
if due < now then due = now end
local next_due = due + interval
local wait = next_due - now - burst * interval
if wait > 0 then
  return wait
end
redis.call('SET', KEYS[2], next_due, 'PX', next_due - now)
local keep = math.min(now + tonumber(ARGV[4]), tonumber(ARGV[5]))
redis.call('ZADD', KEYS[1], 'XX', 'GT', keep, ARGV[1])
return 0
