-- fail: a job that raised leaves the in-flight list for the retry set, the dead set, or nowhere.
--
-- KEYS[1] inflight      list    pyq:inflight:IDENTITY
-- KEYS[2] retry         zset    retry set, score = next attempt (epoch s)
-- KEYS[3] dead          zset    dead set, score = time of death (epoch s)
-- KEYS[4] processed     string  stat:processed
-- KEYS[5] processed_day string  stat:processed:YYYY-MM-DD
-- KEYS[6] failed        string  stat:failed
-- KEYS[7] failed_day    string  stat:failed:YYYY-MM-DD
-- ARGV[1] raw                 the payload as fetched (removed from in-flight)
-- ARGV[2] target              "retry", "dead" or "discard"
-- ARGV[3] score               retry time or time of death (epoch s)
-- ARGV[4] job                 the payload to store, with the error fields
-- ARGV[5] now_s               epoch seconds, for the dead-set age trim
-- ARGV[6] dead_timeout_s      dead entries older than this are dropped
-- ARGV[7] dead_max_jobs       after an insert the dead set keeps its newest dead_max_jobs - 1 entries
-- ARGV[8] day_ttl_s           expiry of the per-day counters
-- ARGV[9] prefix              key namespace ("" or "ns:"), to build the batch's keys
-- ARGV[10] wake_cap           most markers left on a callback queue's wake list
-- ARGV[11] bid                the job's batch, "" for none
-- ARGV[12] jid                the job's jid, its member name in the batch
--
-- A job of a batch is settled there in this same step (includes/batch): a failure that will be
-- retried or discarded counts as "failed", a burial in the dead set as "died".
-- Returns: 1 if the raw payload was in the in-flight list, 0 if not (it is stored anyway).
--- @include "includes/bury"
--- @include "includes/count_failure"
--- @include "includes/batch"

local inflight_key, retry_key, dead_key = KEYS[1], KEYS[2], KEYS[3]
local processed_key, processed_day_key, failed_key, failed_day_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local raw, target, score, job = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now_s, dead_timeout_s, dead_max_jobs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local day_ttl_s, prefix, wake_cap, bid, jid = ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12]

local removed = redis.call("LREM", inflight_key, -1, raw)
if target == "retry" then
  redis.call("ZADD", retry_key, score, job)
elseif target == "dead" then
  bury(dead_key, score, job, now_s, dead_timeout_s, dead_max_jobs)
end
count_failure(processed_key, processed_day_key, failed_key, failed_day_key, day_ttl_s)
if bid ~= "" then
  batch_settle(prefix, bid, jid, target == "dead" and "died" or "failed", now_s, wake_cap)
end
return removed
