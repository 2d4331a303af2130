-- lock_push: take a job's uniqueness lock and, only if it was taken, push the job (one atomic step,
-- so two racing enqueues of the same digest can never both be stored).
--
-- KEYS[1] digest      string  uniquejobs:HEX, jid of the lock holder
-- KEYS[2] locked      hash    uniquejobs:HEX:LOCKED, jid -> lock time (float s)
-- KEYS[3] digests     zset    uniquejobs:digests, score = lock time or run-at time
-- KEYS[4] expiring    zset    uniquejobs:expiring_digests, for until_expired locks with a TTL
-- KEYS[5] queues      set     names of known queues
-- KEYS[6] queue       list    queue:NAME
-- KEYS[7] schedule    zset    scheduled jobs, score = run-at epoch seconds
-- KEYS[8] wake        list    pyq:wake:NAME, wake-up markers for idle workers
-- KEYS[9] prio        zset    pyq:prio:NAME, where a job with a non-default priority goes
-- KEYS[10] prio_seq   string  pyq:prio-seq, FIFO order within one priority
-- ARGV[1] jid                 the job taking the lock
-- ARGV[2] pttl                lock TTL in milliseconds (0 = until released)
-- ARGV[3] lock_type           until_executed, until_expired, ...
-- ARGV[4] lock_score          score in uniquejobs:digests ("" = now_s; the run-at time when scheduled)
-- ARGV[5] now_s               epoch seconds, stored as the lock time
-- ARGV[6] queue_name          NAME, added to the queues set
-- ARGV[7] at_s                "" to push now, else the run-at time (float epoch seconds)
-- ARGV[8] wake_cap            most markers left on the wake list
-- ARGV[9] priority            the job's priority (0 = default: the plain list)
-- ARGV[10] payload            job JSON; absent or "" = take the lock only (server-side relock)
--
-- Returns: {1, jid} locked (and pushed), or {0, holder_jid} when another job holds the lock.
--- @include "includes/unique_take"
--- @include "includes/push_jobs"
--- @include "includes/push_prio"

local digest_key, locked_key, digests_key, expiring_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local queues_key, queue_key, schedule_key, wake_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local jid, pttl, lock_type = ARGV[1], tonumber(ARGV[2]) or 0, ARGV[3]
local lock_score, now_s = ARGV[4], ARGV[5]
local queue_name, at_s, wake_cap, job = ARGV[6], ARGV[7], tonumber(ARGV[8]) or 0, ARGV[10] or ""
local prio_key, seq_key, priority = KEYS[9], KEYS[10], tonumber(ARGV[9]) or 0

local score = lock_score ~= "" and lock_score or now_s
local result = unique_take(digest_key, locked_key, digests_key, expiring_key, jid, pttl, lock_type, score, now_s)
if result[1] == 0 or job == "" then return result end
if at_s == "" and priority == 0 then
  push_jobs(queues_key, queue_key, wake_key, queue_name, { job }, 1, 1, wake_cap)
elseif at_s == "" then
  redis.call("SADD", queues_key, queue_name)
  push_prio(prio_key, seq_key, job, priority, false)
  wake(wake_key, 1, wake_cap)
else
  redis.call("ZADD", schedule_key, at_s, job)
end
return result
