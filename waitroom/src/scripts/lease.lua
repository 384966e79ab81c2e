-- Take or renew the per-event admission lease.
-- KEYS[1] lease  ARGV[1] worker id  ARGV[2] ttl_ms. Returns 1 when this worker holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
