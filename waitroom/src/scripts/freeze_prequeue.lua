-- Freeze the pre-queue by publishing the shuffle seed (once). From then on joins get places
-- behind it. KEYS[1] state  ARGV[1] seed. Returns the seed in force.
redis.call('HSETNX', KEYS[1], 'shuffle_seed', ARGV[1])
return redis.call('HGET', KEYS[1], 'shuffle_seed')
