-- limit_window: count one operation against a sliding-window limiter (Sidekiq Enterprise's window).
--
-- KEYS[1] log         zset   pyq:lmtr-w-NAME, member = operation token, score = when it ran (epoch s)
-- KEYS[2] limiters    hash   pyq:limiters, name -> descriptor
-- ARGV[1] name               the limiter's name
-- ARGV[2] descriptor         its kind and limits as JSON; "" = this process registered it lately
-- ARGV[3] count              most operations within any `seconds`-long window
-- ARGV[4] seconds            the window's length
-- ARGV[5] now_s              epoch seconds
-- ARGV[6] token              the operation's member (unique per call)
--
-- The log keeps the operations of the last `seconds`: at most `count` of them, so it costs O(count).
-- Returns: {1, 0} when counted; {0, wait_ms} when full, wait_ms = until the oldest leaves the window.

local log_key, limiters_key = KEYS[1], KEYS[2]
local name, descriptor, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seconds, now_s, token = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

if descriptor ~= "" then redis.call("HSET", limiters_key, name, descriptor) end
redis.call("ZREMRANGEBYSCORE", log_key, "-inf", now_s - seconds)
if redis.call("ZCARD", log_key) < count then
  redis.call("ZADD", log_key, now_s, token)
  redis.call("PEXPIRE", log_key, math.ceil(seconds * 1000) + 1000)
  return { 1, 0 }
end
local oldest = redis.call("ZRANGE", log_key, 0, 0, "WITHSCORES")
return { 0, math.max(1, math.ceil((tonumber(oldest[2]) + seconds - now_s) * 1000)) }
