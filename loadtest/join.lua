-- wrk script: every request joins a new visitor, each from its own client address
-- (X-Forwarded-For through the trusted loopback proxy). Each thread builds its requests once,
-- before the run (2^18 of them, distinct addresses: about 13 s of joins at 20,000 a second
-- per thread before an address comes again), so the load generator spends on each join only
-- what it spends on a fixed request: built per request in Lua they cost wrk about as much CPU
-- as Redis spends on the join, on the same two cores.
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local span = 262144
local threads = 0
function setup(thread)
  -- Threads start apart; each run starts somewhere else in the 2^24 addresses of 10.0.0.0/8.
  thread:set("base", threads * span + math.random(0, 15) * 2 * span)
  threads = threads + 1
end
local requests = {}
local counter = 0
function init(args)
  for n = 1, span do
    local i = ((base or 0) + n) % 16777216
    local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
    requests[n] = wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip }, "{}")
  end
end
function request()
  counter = counter % span + 1
  return requests[counter]
end
