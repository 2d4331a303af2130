-- reenqueue: a running job puts itself back on its queue (an iterable job interrupted by a stop or
-- by its max_iteration_runtime), leaving the in-flight list in the same step.
--
-- KEYS[1] inflight    list   pyq:inflight:IDENTITY
-- KEYS[2] queues      set    names of known queues
-- KEYS[3] queue       list   queue:NAME the job goes back to
-- KEYS[4] wake        list   pyq:wake:NAME
-- KEYS[5] prio        zset   pyq:prio:NAME, where it goes instead when it has a priority
-- KEYS[6] prio_seq    string pyq:prio-seq, FIFO order within one priority
-- ARGV[1] queue_name         NAME, recorded in queues
-- ARGV[2] raw                the payload as fetched (what the in-flight list holds)
-- ARGV[3] payload            the job to push (the same job with a fresh enqueued_at)
-- ARGV[4] wake_cap           most markers left on the wake list
--
-- The job is pushed only if it was still in the in-flight list: a hurried stop or a recovery may
-- already have put it back, and it must not be queued twice. LPUSH puts it behind the jobs that
-- wait, as Sidekiq's re-push of an interrupted job does (a prioritised job: behind its priority's).
-- Returns: 1 when pushed, 0 when it was no longer in flight.
--- @include "includes/wake"
--- @include "includes/queue_of"
--- @include "includes/priority_of"
--- @include "includes/push_prio"

local inflight_key, queues_key, queue_key, wake_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prio_key, seq_key = KEYS[5], KEYS[6]
local queue_name, raw, job, wake_cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call("LREM", inflight_key, -1, raw) == 0 then
  return 0
end
redis.call("SADD", queues_key, queue_name)
local _, decoded = queue_of(job)
local priority = priority_of(decoded)
if priority == 0 then
  redis.call("LPUSH", queue_key, job)
else
  push_prio(prio_key, seq_key, job, priority, false)
end
wake(wake_key, 1, wake_cap)
return 1
