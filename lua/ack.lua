-- ack: drop finished jobs from a process's in-flight list and count them as processed.
--
-- KEYS[1] inflight    list    pyq:inflight:IDENTITY
-- KEYS[2] processed   string  stat:processed
-- KEYS[3] processed_day string stat:processed:YYYY-MM-DD (UTC)
-- ARGV[1] day_ttl_s          expiry of the per-day counter (Sidekiq: 5 years)
-- ARGV[2..] raws             the raw payloads of the finished jobs
--
-- Returns: the number of payloads found and removed from the in-flight list.

local inflight_key, processed_key, processed_day_key = KEYS[1], KEYS[2], KEYS[3]
local day_ttl_s = ARGV[1]
local first_raw = 2

local removed = 0
for i = first_raw, #ARGV do
  removed = removed + redis.call("LREM", inflight_key, -1, ARGV[i])
end
local n = #ARGV - first_raw + 1
redis.call("INCRBY", processed_key, n)
redis.call("INCRBY", processed_day_key, n)
redis.call("EXPIRE", processed_day_key, day_ttl_s)
return removed
