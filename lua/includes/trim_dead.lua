--- trim_dead(dead_key, now_s, timeout_s, max_jobs)
-- Sidekiq's dead-set trim on insert: drop entries older than timeout_s, then keep the newest
-- max_jobs - 1 (Sidekiq's ZREMRANGEBYRANK 0 -max_jobs).
local function trim_dead(dead_key, now_s, timeout_s, max_jobs)
  redis.call("ZREMRANGEBYSCORE", dead_key, "-inf", now_s - timeout_s)
  redis.call("ZREMRANGEBYRANK", dead_key, 0, -max_jobs)
end
