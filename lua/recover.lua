-- recover: push a dead process's in-flight jobs back onto their queues and drop its registry entries.
--
-- KEYS[1] inflight   list   pyq:inflight:IDENTITY, raw payloads fetched and not finished (head = newest)
-- KEYS[2] owners     set    pyq:inflight-owners, identities that own an in-flight list
-- KEYS[3] queues     set    names of known queues
-- KEYS[4] processes  set    Sidekiq's registry of live identities
-- KEYS[5] process    hash   IDENTITY, the heartbeat hash (info, beat, ...)
-- KEYS[6] work       hash   IDENTITY:work, running jobs (Sidekiq 6.5+ name)
-- KEYS[7] workers    hash   IDENTITY:workers, running jobs (Sidekiq 6.0-6.4 name)
-- KEYS[8] dead       zset   dead set, score = time of death (epoch s)
-- KEYS[9] failed        string  stat:failed (a buried job counts as a failure)
-- KEYS[10] failed_day   string  stat:failed:YYYY-MM-DD
-- KEYS[11] processed    string  stat:processed (Sidekiq counts failures as processed too)
-- KEYS[12] processed_day string stat:processed:YYYY-MM-DD
-- ARGV[1] prefix            key namespace ("" or "ns:"), to build queue:NAME and pyq:wake:NAME
-- ARGV[2] identity          the process whose jobs are recovered
-- ARGV[3] now_s             epoch seconds, compared with the hash's beat
-- ARGV[4] stale_after_s     0 = recover unconditionally; else only when the hash is gone, has no
--                           beat, or its beat is older than this many seconds
-- ARGV[5] wake_cap          most markers left on each wake list
-- ARGV[6] max_crashes       a job recovered this many times goes to the dead set (0 = never)
-- ARGV[7] crash_ttl_s       lifetime of a job's crash counter after its last recovery
-- ARGV[8] day_ttl_s         expiry of the per-day counters
--
-- Builds: queue:NAME and pyq:wake:NAME from each job's "queue" field ("default" when the raw
-- payload is not a JSON object with a string queue: it is pushed anyway, never dropped), and
-- pyq:crashes:JID, the number of times a job was in flight in a process that died. A job that
-- reaches max_crashes keeps killing its worker: it is buried with error_class "pyq.WorkerCrashed"
-- (fields appended to the raw JSON, so every other value keeps its exact bytes; JSON readers take
-- the last of repeated keys) instead of looping forever.
-- Jobs go to the queue's tail (RPUSH), oldest fetched last, so they are taken next, in fetch order.
-- Returns: the number of jobs pushed back (buried ones not counted), or -1 when the process is
-- still alive (nothing changed).

local inflight_key, owners_key, queues_key = KEYS[1], KEYS[2], KEYS[3]
local processes_key, process_key, work_key, workers_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local dead_key = KEYS[8]
local stat_keys = { KEYS[9], KEYS[10], KEYS[11], KEYS[12] }
local prefix, identity, now_text = ARGV[1], ARGV[2], ARGV[3]
local now_s, stale_after_s, wake_cap = tonumber(now_text), tonumber(ARGV[4]), tonumber(ARGV[5])
local max_crashes, crash_ttl_s, day_ttl_s = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]

-- True when the job was buried: it reached max_crashes recoveries.
local function bury_if_poison(raw, job)
  if max_crashes <= 0 or type(job["jid"]) ~= "string" then return false end
  local crashes_key = prefix .. "pyq:crashes:" .. job["jid"]
  local crashes = redis.call("INCR", crashes_key)
  if crashes < max_crashes then
    redis.call("EXPIRE", crashes_key, crash_ttl_s)
    return false
  end
  redis.call("DEL", crashes_key)
  local body = string.gsub(raw, "%s*}%s*$", "")
  local fields = ',"error_class":"pyq.WorkerCrashed","error_message":"the worker process died '
    .. crashes .. ' times while this job was in flight","failed_at":' .. now_text .. '}'
  redis.call("ZADD", dead_key, now_s, body .. fields)
  for i, key in ipairs(stat_keys) do
    redis.call("INCRBY", key, 1)
    if i % 2 == 0 then redis.call("EXPIRE", key, day_ttl_s) end
  end
  return true
end

if stale_after_s > 0 then
  local beat = tonumber(redis.call("HGET", process_key, "beat"))
  if beat and now_s - beat <= stale_after_s then
    return -1
  end
end

local raws = redis.call("LRANGE", inflight_key, 0, -1)
local pushed_per_queue, pushed = {}, 0
for _, raw in ipairs(raws) do
  local ok, job = pcall(cjson.decode, raw)
  local is_job = ok and type(job) == "table"
  local queue_name = "default"
  if is_job and type(job["queue"]) == "string" and job["queue"] ~= "" then
    queue_name = job["queue"]
  end
  if not (is_job and bury_if_poison(raw, job)) then
    redis.call("RPUSH", prefix .. "queue:" .. queue_name, raw)
    pushed_per_queue[queue_name] = (pushed_per_queue[queue_name] or 0) + 1
    pushed = pushed + 1
  end
end

for queue_name, n in pairs(pushed_per_queue) do
  redis.call("SADD", queues_key, queue_name)
  if wake_cap > 0 then
    local wake_key = prefix .. "pyq:wake:" .. queue_name
    for _ = 1, math.min(n, wake_cap) do redis.call("LPUSH", wake_key, "1") end
    redis.call("LTRIM", wake_key, 0, wake_cap - 1)
  end
end

redis.call("DEL", inflight_key, process_key, work_key, workers_key)
redis.call("SREM", owners_key, identity)
redis.call("SREM", processes_key, identity)
return pushed
