--- bury(dead_key, score, job, now_s, dead_timeout_s, dead_max_jobs)
-- Adds job to the dead set at score, then trims it as Sidekiq does on every insert: entries older
-- than dead_timeout_s go, then only the newest dead_max_jobs - 1 entries stay (Sidekiq's
-- ZREMRANGEBYRANK 0 -max_jobs). Every writer to the dead set goes through here.
local function bury(dead_key, score, job, now_s, dead_timeout_s, dead_max_jobs)
  redis.call("ZADD", dead_key, score, job)
  redis.call("ZREMRANGEBYSCORE", dead_key, "-inf", now_s - dead_timeout_s)
  redis.call("ZREMRANGEBYRANK", dead_key, 0, -dead_max_jobs)
end
