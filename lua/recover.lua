-- recover: push a dead process's in-flight jobs back onto their queues and drop its registry entries.
--
-- KEYS[1] inflight      list    pyq:inflight:IDENTITY, fetched and not finished (head = newest)
-- KEYS[2] owners        set     pyq:inflight-owners, identities that own an in-flight list
-- KEYS[3] queues        set     names of known queues
-- KEYS[4] processes     set     Sidekiq's registry of live identities
-- KEYS[5] process       hash    IDENTITY, the heartbeat hash (info, beat, ...)
-- KEYS[6] work          hash    IDENTITY:work, running jobs (Sidekiq 6.5+ name)
-- KEYS[7] workers       hash    IDENTITY:workers, running jobs (Sidekiq 6.0-6.4 name)
-- KEYS[8] dead          zset    dead set, score = time of death (epoch s)
-- KEYS[9] processed     string  stat:processed (a buried job counts as processed and failed)
-- KEYS[10] processed_day string stat:processed:YYYY-MM-DD
-- KEYS[11] failed       string  stat:failed
-- KEYS[12] failed_day   string  stat:failed:YYYY-MM-DD
-- ARGV[1] prefix              key namespace ("" or "ns:"), to build the keys named under Builds
-- ARGV[2] identity            the process whose jobs are recovered
-- ARGV[3] now_s               epoch seconds, compared with the hash's beat
-- ARGV[4] stale_after_s       0 = recover now; else only if the hash has no beat newer than this
-- ARGV[5] wake_cap            most markers left on each wake list
-- ARGV[6] max_crashes         a job recovered this many times is buried instead (0 = never)
-- ARGV[7] crash_ttl_s         lifetime of a job's crash counter after its last recovery
-- ARGV[8] dead_timeout_s      dead entries older than this are dropped when one is buried
-- ARGV[9] dead_max_jobs       after an insert the dead set keeps its newest dead_max_jobs - 1 entries
-- ARGV[10] day_ttl_s          expiry of the per-day counters
--
-- Builds: queue:NAME, pyq:wake:NAME, pyq:crashes:JID, pyq:prio:NAME, and b-BID... of a buried job's batch
-- (it "died" there). Jobs go to the tail (RPUSH), so they run next; a prioritised job goes back into
-- pyq:prio:NAME, first of its priority (see put_back).
-- Returns: {pushed, queue, raw, queue, raw, ...}: the number of jobs pushed back, then the queue and
-- payload of each job buried as crashed; {-1} if the process is alive.
--- @include "includes/queue_of"
--- @include "includes/wake"
--- @include "includes/crash_burial"
--- @include "includes/bury"
--- @include "includes/count_failure"
--- @include "includes/batch"
--- @include "includes/put_back"

local inflight_key, owners_key, queues_key, processes_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local process_key, work_key, workers_key, dead_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local prefix, identity, now_text, stale_after_s = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local now_s, wake_cap, max_crashes, crash_ttl_s = tonumber(now_text), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local dead_timeout_s, dead_max_jobs, day_ttl_s = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]

local beat = stale_after_s > 0 and tonumber(redis.call("HGET", process_key, "beat"))
if beat and now_s - beat <= stale_after_s then return {-1} end

local pushed_per_queue, pushed, reply = {}, 0, {0}
for _, raw in ipairs(redis.call("LRANGE", inflight_key, 0, -1)) do
  local queue_name, job = queue_of(raw)
  local entry = crash_burial(prefix, job, raw, max_crashes, crash_ttl_s, now_text)
  if entry then
    bury(dead_key, now_s, entry, now_s, dead_timeout_s, dead_max_jobs)
    count_failure(KEYS[9], KEYS[10], KEYS[11], KEYS[12], day_ttl_s)
    if type(job["bid"]) == "string" and job["bid"] ~= "" then
      batch_settle(prefix, job["bid"], job["jid"], "died", now_s, wake_cap)
    end
    reply[#reply + 1] = queue_name
    reply[#reply + 1] = raw
  else
    put_back(prefix, queue_name, raw, job, true)
    pushed_per_queue[queue_name], pushed = (pushed_per_queue[queue_name] or 0) + 1, pushed + 1
  end
end
for queue_name, n in pairs(pushed_per_queue) do
  redis.call("SADD", queues_key, queue_name)
  wake(prefix .. "pyq:wake:" .. queue_name, n, wake_cap)
end
redis.call("DEL", inflight_key, process_key, work_key, workers_key)
redis.call("SREM", owners_key, identity)
redis.call("SREM", processes_key, identity)
reply[1] = pushed
return reply
