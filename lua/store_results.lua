-- store_results: keep the return values of finished jobs that asked for one (result_ttl).
--
-- KEYS[1..] result           list   pyq:result:JID, one key per result, in the order of ARGV's groups
-- ARGV[1] prefix             key namespace ("" or "ns:"), to build a batch's b-BID keys
-- ARGV[2..] results          jid, ttl_s, msgpack blob, bid ("" for none), then the next job's four
--
-- Each pyq:result:JID becomes a list of one element, the blob, that expires after ttl_s (a list,
-- so that callers can wait for it with BLMOVE). The acker sends it in the same pipeline as, and
-- before, the ack of those jobs: a job that is acked has its result stored.
-- A job of a batch also joins b-BID-results, so the batch's callbacks can read every result.
-- Returns: the number of results stored.

local prefix = ARGV[1]
local first = 2

local stored = 0
for i = first, #ARGV, 4 do
  local key = KEYS[stored + 1]
  redis.call("DEL", key)
  redis.call("RPUSH", key, ARGV[i + 2])
  redis.call("EXPIRE", key, ARGV[i + 1])
  local bid = ARGV[i + 3]
  if bid ~= "" then
    local batch_key = prefix .. "b-" .. bid
    local expires_at = redis.call("HGET", batch_key, "expires_at")
    if expires_at then
      redis.call("SADD", batch_key .. "-results", ARGV[i])
      redis.call("EXPIREAT", batch_key .. "-results", expires_at)
    end
  end
  stored = stored + 1
end
return stored
