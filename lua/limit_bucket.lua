-- limit_bucket: count one operation against a bucket limiter (Sidekiq Enterprise's bucket): `count`
-- operations per interval of `seconds`, the intervals aligned to the epoch, each starting empty.
--
-- KEYS[1] bucket      hash   pyq:lmtr-b-NAME: interval (index of the current interval), used
-- KEYS[2] limiters    hash   pyq:limiters, name -> descriptor
-- ARGV[1] name               the limiter's name
-- ARGV[2] descriptor         its kind and limits as JSON; "" = this process registered it lately
-- ARGV[3] count              most operations per interval
-- ARGV[4] seconds            the interval's length
-- ARGV[5] now_s              epoch seconds
--
-- Returns: {1, 0} when counted; {0, wait_ms} when the bucket is empty, wait_ms = until the next interval.

local bucket_key, limiters_key = KEYS[1], KEYS[2]
local name, descriptor, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seconds, now_s = tonumber(ARGV[4]), tonumber(ARGV[5])

if descriptor ~= "" then redis.call("HSET", limiters_key, name, descriptor) end
local interval = math.floor(now_s / seconds)
local stored = redis.call("HMGET", bucket_key, "interval", "used")
local used = 0
if tonumber(stored[1]) == interval then used = tonumber(stored[2]) or 0 end
if used < count then
  redis.call("HSET", bucket_key, "interval", interval, "used", used + 1)
  redis.call("PEXPIRE", bucket_key, math.ceil(seconds * 2000) + 1000)
  return { 1, 0 }
end
return { 0, math.max(1, math.ceil(((interval + 1) * seconds - now_s) * 1000)) }
