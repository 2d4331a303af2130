-- limit_concurrent: take one lease of a concurrent limiter (Sidekiq Enterprise's concurrent limiter).
--
-- KEYS[1] leases      zset   pyq:lmtr-c-NAME, member = lease token, score = when it lapses (epoch s)
-- KEYS[2] limiters    hash   pyq:limiters, name -> descriptor (what `pyq limits` lists)
-- ARGV[1] name               the limiter's name
-- ARGV[2] descriptor         its kind and limits as JSON; "" = this process registered it lately
-- ARGV[3] limit              most leases held at once
-- ARGV[4] now_s              epoch seconds
-- ARGV[5] lock_timeout_s     a lease lapses this long after it was taken
-- ARGV[6] token              the new lease's member (unique per acquire)
--
-- Lapsed leases are dropped first: a holder that died (SIGKILL) frees its lease lock_timeout_s after it
-- took it, never later. The key expires once every lease has lapsed.
-- Returns: {1, 0} when the lease is taken; {0, wait_ms} when all are held, wait_ms = until the first lapses.

local leases_key, limiters_key = KEYS[1], KEYS[2]
local name, descriptor, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now_s, lock_timeout_s, token = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

if descriptor ~= "" then redis.call("HSET", limiters_key, name, descriptor) end
redis.call("ZREMRANGEBYSCORE", leases_key, "-inf", now_s)
if redis.call("ZCARD", leases_key) < limit then
  redis.call("ZADD", leases_key, now_s + lock_timeout_s, token)
  redis.call("PEXPIRE", leases_key, math.ceil(lock_timeout_s * 1000) + 1000)
  return { 1, 0 }
end
local first = redis.call("ZRANGE", leases_key, 0, 0, "WITHSCORES")
return { 0, math.max(1, math.ceil((tonumber(first[2]) - now_s) * 1000)) }
