-- limit_leaky: pour one operation into a leaky-bucket limiter (Sidekiq Enterprise's leaky): the
-- bucket holds `count`, and drains at count / seconds per second, so after a burst of `count` the
-- operations are spread evenly, one every seconds / count.
--
-- KEYS[1] leaky       hash   pyq:lmtr-l-NAME: level (operations in the bucket), at (epoch s of level)
-- KEYS[2] limiters    hash   pyq:limiters, name -> descriptor
-- ARGV[1] name               the limiter's name
-- ARGV[2] descriptor         its kind and limits as JSON; "" = this process registered it lately
-- ARGV[3] count              the bucket's size
-- ARGV[4] seconds            time to drain a full bucket
-- ARGV[5] now_s              epoch seconds
--
-- Returns: {1, 0} when poured; {0, wait_ms} when full, wait_ms = until one operation has drained.

local bucket_key, limiters_key = KEYS[1], KEYS[2]
local name, descriptor, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seconds, now_s = tonumber(ARGV[4]), tonumber(ARGV[5])

if descriptor ~= "" then redis.call("HSET", limiters_key, name, descriptor) end
local stored = redis.call("HMGET", bucket_key, "level", "at")
local rate = count / seconds
local level = tonumber(stored[1]) or 0
local at = tonumber(stored[2]) or now_s
level = math.max(0, level - math.max(0, now_s - at) * rate)
if level + 1 <= count then
  redis.call("HSET", bucket_key, "level", tostring(level + 1), "at", tostring(now_s))
  redis.call("PEXPIRE", bucket_key, math.ceil(seconds * 1000) + 1000)
  return { 1, 0 }
end
return { 0, math.max(1, math.ceil((level + 1 - count) / rate * 1000)) }
