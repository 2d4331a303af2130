-- cancel: take a job that has not started out of its queue, the schedule or the retry set, and record it.
--
-- KEYS[1] source      list|zset  where the job waits: queue:NAME (a list), schedule or retry (zsets)
-- KEYS[2] cancelled   zset       pyq:cancelled, the audit list of cancelled jobs, score = cancel time
-- KEYS[3] count       string     pyq:stat:cancelled, jobs cancelled so far
-- ARGV[1] raw                the job's payload, byte for byte (its member in source)
-- ARGV[2] record             the JSON entry kept in the audit list
-- ARGV[3] now_s              epoch seconds: the entry's score, and the reference for the trim
-- ARGV[4] keep_s             audit entries older than this are dropped (the dead set's dead_timeout)
--
-- Returns: 1 when the job was taken out and recorded, 0 when source no longer held it (it started,
-- or someone else moved it), and nothing changed.

local source_key, cancelled_key, count_key = KEYS[1], KEYS[2], KEYS[3]
local raw, record, now_text, keep_s = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local removed
if redis.call("TYPE", source_key)["ok"] == "list" then
  removed = redis.call("LREM", source_key, 1, raw)
else
  removed = redis.call("ZREM", source_key, raw)
end
if removed == 0 then return 0 end
redis.call("ZADD", cancelled_key, now_text, record)
redis.call("ZREMRANGEBYSCORE", cancelled_key, "-inf", tonumber(now_text) - keep_s)
redis.call("INCR", count_key)
return 1
