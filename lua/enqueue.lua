-- enqueue: push a batch of jobs for one queue, now or at a time (Sidekiq's client push).
--
-- KEYS[1] queues     set    names of known queues
-- KEYS[2] queue      list   queue:NAME, producers LPUSH
-- KEYS[3] schedule   zset   scheduled jobs, score = run-at epoch seconds
-- KEYS[4] wake       list   pyq:wake:NAME, wake-up markers for idle workers
-- KEYS[5] prio       zset   pyq:prio:NAME, the queue's jobs with a non-default priority
-- KEYS[6] prio_seq   string pyq:prio-seq, FIFO order within one priority
-- ARGV[1] queue_name        NAME, added to the queues set
-- ARGV[2] at_s              "" to push now, else the run-at time (float epoch seconds)
-- ARGV[3] wake_cap          most markers left on the wake list (0 = none)
-- ARGV[4] priority          the jobs' priority (0 = default: the plain list; see push_prio)
-- ARGV[5..] payloads        job JSON, already carrying enqueued_at (now) or no "at" (later)
--
-- A scheduled job goes to the schedule set whatever its priority: promotion routes it.
-- Returns: the number of jobs stored.
--- @include "includes/store_jobs"

local queues_key, queue_key, schedule_key, wake_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prio_key, seq_key = KEYS[5], KEYS[6]
local queue_name, at_s, wake_cap, priority = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local first = 5

return store_jobs(queues_key, queue_key, schedule_key, wake_key, prio_key, seq_key, queue_name, at_s, priority, ARGV,
  first, wake_cap)
