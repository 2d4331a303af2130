-- promote: move due jobs from the schedule or retry set to their queues (Sidekiq's poller).
--
-- KEYS[1] zset       zset   schedule or retry, score = due time in epoch seconds
-- KEYS[2] queues     set    names of known queues
-- ARGV[1] prefix            key namespace ("" or "ns:"), to build queue:NAME and pyq:wake:NAME
-- ARGV[2] now_s             epoch seconds; members scored at or before it are due
-- ARGV[3] limit             most jobs moved by this call
-- ARGV[4] enqueued_at       JSON text of the new enqueued_at (float seconds or integer ms)
-- ARGV[5] wake_cap          most markers left on each wake list
--
-- Builds: queue:NAME and pyq:wake:NAME from each job's queue (see queue_of); a job with a priority
-- goes to pyq:prio:NAME instead of the list (see put_back), ordered by pyq:prio-seq.
-- Returns: the number of jobs moved; the caller calls again while it equals limit.
--- @include "includes/push_jobs"
--- @include "includes/set_enqueued_at"
--- @include "includes/queue_of"
--- @include "includes/put_back"

local zset_key, queues_key = KEYS[1], KEYS[2]
local prefix, now_s, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local enqueued_at, wake_cap = ARGV[4], tonumber(ARGV[5])

local due = redis.call("ZRANGEBYSCORE", zset_key, "-inf", now_s, "LIMIT", 0, limit)
for _, raw in ipairs(due) do
  redis.call("ZREM", zset_key, raw)
  local queue_name, job = queue_of(raw)
  local payload = { set_enqueued_at(raw, enqueued_at) }
  if priority_of(job) == 0 then
    push_jobs(queues_key, prefix .. "queue:" .. queue_name, prefix .. "pyq:wake:" .. queue_name,
              queue_name, payload, 1, 1, wake_cap)
  else
    redis.call("SADD", queues_key, queue_name)
    put_back(prefix, queue_name, payload[1], job, false)
    wake(prefix .. "pyq:wake:" .. queue_name, 1, wake_cap)
  end
end
return #due
