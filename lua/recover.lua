-- recover: push a dead process's in-flight jobs back onto their queues and drop its registry entries.
--
-- KEYS[1] inflight   list   pyq:inflight:IDENTITY, raw payloads fetched and not finished (head = newest)
-- KEYS[2] owners     set    pyq:inflight-owners, identities that own an in-flight list
-- KEYS[3] queues     set    names of known queues
-- KEYS[4] processes  set    Sidekiq's registry of live identities
-- KEYS[5] process    hash   IDENTITY, the heartbeat hash (info, beat, ...)
-- KEYS[6] work       hash   IDENTITY:work, running jobs (Sidekiq 6.5+ name)
-- KEYS[7] workers    hash   IDENTITY:workers, running jobs (Sidekiq 6.0-6.4 name)
-- ARGV[1] prefix            key namespace ("" or "ns:"), to build queue:NAME and pyq:wake:NAME
-- ARGV[2] identity          the process whose jobs are recovered
-- ARGV[3] now_s             epoch seconds, compared with the hash's beat
-- ARGV[4] stale_after_s     0 = recover unconditionally; else only when the hash is gone, has no
--                           beat, or its beat is older than this many seconds
-- ARGV[5] wake_cap          most markers left on each wake list
--
-- Builds: queue:NAME and pyq:wake:NAME from each job's "queue" field ("default" when the raw
-- payload is not a JSON object with a string queue: it is pushed anyway, never dropped).
-- Jobs go to the queue's tail (RPUSH), oldest fetched last, so they are taken next, in fetch order.
-- Returns: the number of jobs pushed back, or -1 when the process is still alive (nothing changed).

local inflight_key, owners_key, queues_key = KEYS[1], KEYS[2], KEYS[3]
local processes_key, process_key, work_key, workers_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, identity, now_s = ARGV[1], ARGV[2], tonumber(ARGV[3])
local stale_after_s, wake_cap = tonumber(ARGV[4]), tonumber(ARGV[5])

if stale_after_s > 0 then
  local beat = tonumber(redis.call("HGET", process_key, "beat"))
  if beat and now_s - beat <= stale_after_s then
    return -1
  end
end

local raws = redis.call("LRANGE", inflight_key, 0, -1)
local pushed_per_queue = {}
for _, raw in ipairs(raws) do
  local ok, job = pcall(cjson.decode, raw)
  local queue_name = "default"
  if ok and type(job) == "table" and type(job["queue"]) == "string" and job["queue"] ~= "" then
    queue_name = job["queue"]
  end
  redis.call("RPUSH", prefix .. "queue:" .. queue_name, raw)
  pushed_per_queue[queue_name] = (pushed_per_queue[queue_name] or 0) + 1
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
return #raws
