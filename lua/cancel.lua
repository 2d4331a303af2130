-- cancel: take one job out of where pyq.cancel found it, or flag it cancelled while it runs; keep an audit entry.
--
-- KEYS[1] source_key  list|zset  queue:NAME, schedule, retry, or pyq:inflight:IDENTITY (running)
-- KEYS[2] audit       zset    pyq:cancelled (entries scored by cancel time)
-- KEYS[3] iteration   hash    it-JID (Sidekiq 7.3's iteration state; only its cancelled field is written)
-- KEYS[4] count       string  pyq:stat:cancelled
-- ARGV[1] kind               "list" (a queue), "zset" (schedule/retry) or "running" (an in-flight list)
-- ARGV[2] member             the raw payload as found
-- ARGV[3] now_s              epoch seconds of the cancel
-- ARGV[4] audit_ttl_s        how long audit entries are kept (dead_timeout)
-- ARGV[5] iteration_ttl_s    expiry set on the iteration hash (Sidekiq: 30 days)
-- ARGV[6] entry              the audit entry (JSON)
-- ARGV[7] prefix             the key prefix; the pub/sub channel running workers listen on is PREFIX.."pyq:cancel"
-- ARGV[8] jid                the job's id, published on the channel
-- ARGV[9] wake_cap           most markers left on a batch callback's queue
--
-- A job of a batch taken out of a queue or set counts there as failed, in this step: it will never
-- succeed (a running one is settled so by its worker when it stops).
-- Returns: 1 when the job was still there (removed, or flagged while running), else 0.
--- @include "includes/batch"

local source_key, audit_key, iteration_key, count_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, member, now_s = ARGV[1], ARGV[2], tonumber(ARGV[3])
local audit_ttl_s, iteration_ttl_s, entry, jid = tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[8]
local prefix, wake_cap = ARGV[7], tonumber(ARGV[9])
local channel = prefix .. "pyq:cancel"

local found = 0
if kind == "list" then
  found = redis.call("LREM", source_key, 1, member)
elseif kind == "zset" then
  found = redis.call("ZREM", source_key, member)
elseif kind == "running" then
  if redis.call("LPOS", source_key, member) then
    found = 1
    redis.call("HSETNX", iteration_key, "cancelled", math.floor(now_s))
    redis.call("EXPIRE", iteration_key, iteration_ttl_s)
    redis.call("PUBLISH", channel, jid)
  end
else
  return redis.error_reply("cancel: unknown kind " .. tostring(kind))
end
if found == 0 then
  return 0
end
if kind ~= "running" then
  local ok, job = pcall(cjson.decode, member)
  if ok and type(job) == "table" and type(job["bid"]) == "string" and job["bid"] ~= "" then
    batch_settle(prefix, job["bid"], jid, "failed", now_s, wake_cap)
  end
end
redis.call("ZADD", audit_key, now_s, entry)
redis.call("ZREMRANGEBYSCORE", audit_key, "-inf", "(" .. (now_s - audit_ttl_s))
redis.call("INCR", count_key)
return 1
