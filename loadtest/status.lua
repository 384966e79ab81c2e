-- wrk script: status polls from a pool of queued visitors, round robin. Each visitor comes
-- from its own client address (X-Forwarded-For through the trusted loopback proxy), as
-- thousands of fans would, so per-client limits apply per fan.
-- TOKENS names a file with one queue token per line.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local counter = 0
function setup(thread)
  thread:set("offset", math.random(1, #tokens))
end
function request()
  counter = counter + 1
  local i = ((counter + (offset or 0)) % #tokens) + 1
  local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i], ["X-Forwarded-For"] = ip })
end
