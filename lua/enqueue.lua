-- enqueue: push a batch of jobs for one queue, now or at a time (Sidekiq's client push).
--
-- KEYS[1] queues     set    names of known queues
-- KEYS[2] queue      list   queue:NAME, producers LPUSH
-- KEYS[3] schedule   zset   scheduled jobs, score = run-at epoch seconds
-- KEYS[4] wake       list   pyq:wake:NAME, wake-up markers for idle workers
-- ARGV[1] queue_name        NAME, added to the queues set
-- ARGV[2] at_s              "" to push now, else the run-at time (float epoch seconds)
-- ARGV[3] wake_cap          most markers left on the wake list (0 = none)
-- ARGV[4..] payloads        job JSON, already carrying enqueued_at (now) or no "at" (later)
--
-- Returns: the number of jobs stored.
--- @include "includes/store_jobs"

local queues_key, queue_key, schedule_key, wake_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local queue_name, at_s, wake_cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local first = 4

return store_jobs(queues_key, queue_key, schedule_key, wake_key, queue_name, at_s, ARGV, first, wake_cap)
