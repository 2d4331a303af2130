-- reschedule: a running job over a limit leaves the in-flight list for the schedule set, to run later
-- (Sidekiq Enterprise's OverLimit): neither a failure nor a retry, counted per limiter.
--
-- KEYS[1] inflight    list    pyq:inflight:IDENTITY
-- KEYS[2] schedule    zset    scheduled jobs, score = run-at epoch seconds
-- KEYS[3] over_count  string  pyq:stat:over_limit, jobs rescheduled by every limiter
-- KEYS[4] over        hash    pyq:limiters:over, limiter name -> jobs it rescheduled
-- ARGV[1] raw                 the payload as fetched (what the in-flight list holds)
-- ARGV[2] payload             the job to schedule (its "overrated" count raised by one)
-- ARGV[3] at_s                when it runs again (epoch s)
-- ARGV[4] limiter             the name of the limiter it was over
--
-- Scheduled only if it was still in the in-flight list, so a job a stop or a recovery already put
-- back is not queued twice. Promotion later sends it to its queue (or its priority zset).
-- Returns: 1 when rescheduled, 0 when it was no longer in flight.

local inflight_key, schedule_key, over_count_key, over_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local raw, job, at_s, limiter = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call("LREM", inflight_key, -1, raw) == 0 then
  return 0
end
redis.call("ZADD", schedule_key, at_s, job)
redis.call("INCR", over_count_key)
redis.call("HINCRBY", over_key, limiter, 1)
return 1
