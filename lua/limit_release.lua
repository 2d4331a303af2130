-- limit_release: give back one lease of a concurrent limiter.
--
-- KEYS[1] leases      zset   pyq:lmtr-c-NAME
-- ARGV[1] token              the lease's member, as taken by limit_concurrent
--
-- Returns: 1 when the lease was held, 0 when it had lapsed (and another holder may have taken its place).

local leases_key, token = KEYS[1], ARGV[1]

return redis.call("ZREM", leases_key, token)
