-- wrk script: status polls from a pool of queued visitors, round robin.
-- TOKENS names a file with one queue token per line; the path is given on the command line.
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
  local t = tokens[((counter + (offset or 0)) % #tokens) + 1]
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. t })
end
