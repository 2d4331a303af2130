-- ack: drop finished jobs from a process's in-flight list, count them as processed, settle their batches.
--
-- KEYS[1] inflight    list    pyq:inflight:IDENTITY
-- KEYS[2] processed   string  stat:processed
-- KEYS[3] processed_day string stat:processed:YYYY-MM-DD (UTC)
-- ARGV[1] day_ttl_s          expiry of the per-day counter (Sidekiq: 5 years)
-- ARGV[2] prefix             key namespace ("" or "ns:"), to build the batches' keys
-- ARGV[3] now_s              epoch seconds, for batch callbacks
-- ARGV[4] wake_cap           most markers left on a callback queue's wake list
-- ARGV[5] batch_members      "" or a JSON list of [bid, jid, outcome] for the jobs that belong to a batch
-- ARGV[6..] raws             the raw payloads of the finished jobs
--
-- Each batch member is settled in this same step (includes/batch), so a job that is acked has
-- counted for its batch, and a job acked twice counts once; each batch is checked once per call.
-- Returns: the number of payloads found and removed from the in-flight list.
--- @include "includes/batch"

local inflight_key, processed_key, processed_day_key = KEYS[1], KEYS[2], KEYS[3]
local day_ttl_s, prefix, now_s, wake_cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local batch_members = ARGV[5]
local first_raw = 6

if batch_members ~= "" then
  local touched = {}
  for _, member in ipairs(cjson.decode(batch_members)) do
    if batch_record(prefix .. "b-" .. member[1], member[2], member[3], now_s) then
      batch_callback(prefix, prefix .. "b-" .. member[1], "death", now_s, wake_cap)
    end
    touched[member[1]] = true
  end
  for bid in pairs(touched) do
    batch_check(prefix, bid, now_s, wake_cap)
  end
end
local removed = 0
for i = first_raw, #ARGV do
  removed = removed + redis.call("LREM", inflight_key, -1, ARGV[i])
end
local n = #ARGV - first_raw + 1
redis.call("INCRBY", processed_key, n)
redis.call("INCRBY", processed_day_key, n)
redis.call("EXPIRE", processed_day_key, day_ttl_s)
return removed
