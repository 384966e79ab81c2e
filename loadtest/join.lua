-- wrk script: every request joins a new visitor, each from its own client address
-- (X-Forwarded-For through the trusted loopback proxy).
local counter = 0
function setup(thread)
  thread:set("base", math.random(0, 1000000))
end
function request()
  counter = counter + 1
  local i = counter + (base or 0)
  local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip }, "{}")
end
