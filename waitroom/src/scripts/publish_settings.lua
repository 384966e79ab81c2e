-- Set an event's live settings unless Redis already holds a newer revision (or whatever it
-- holds, when forced).
-- KEYS[1] cfg  ARGV[1] settings JSON  ARGV[2] revision  ARGV[3] 'force' (optional).
-- Returns 1 when written.
local current = redis.call('GET', KEYS[1])
if current and ARGV[3] ~= 'force' then
  local ok, parsed = pcall(cjson.decode, current)
  if ok and parsed.revision and tonumber(parsed.revision) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
