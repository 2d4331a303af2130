-- kill: put one job in the dead set now, trimmed by age and count (Sidekiq's DeadSet#kill).
--
-- KEYS[1] dead        zset   dead set, score = time of death (epoch s)
-- KEYS[2] source      zset   optional: the set the job leaves (retry, for an admin kill)
-- ARGV[1] job                the payload to bury, byte for byte (and its member in source)
-- ARGV[2] now_s              epoch seconds: the score, and the reference for the age trim
-- ARGV[3] dead_timeout_s     dead entries older than this are dropped
-- ARGV[4] dead_max_jobs      after an insert the dead set keeps its newest dead_max_jobs - 1 entries
--
-- Serves the unique-jobs reject strategy and admin kills; like Sidekiq's kill, it counts no stats.
-- Returns: 1 buried, 0 when source was given and no longer held the job (nothing changed).
--- @include "includes/bury"

local dead_key, source_key = KEYS[1], KEYS[2]
local job, now_text = ARGV[1], ARGV[2]
local dead_timeout_s, dead_max_jobs = tonumber(ARGV[3]), tonumber(ARGV[4])

if source_key and redis.call("ZREM", source_key, job) == 0 then return 0 end
bury(dead_key, now_text, job, tonumber(now_text), dead_timeout_s, dead_max_jobs)
return 1
