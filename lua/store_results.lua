-- store_results: keep the return values of finished jobs that asked for one (result_ttl).
--
-- ARGV[1] prefix             key namespace ("" or "ns:"), to build pyq:result:JID
-- ARGV[2..] triples          jid, ttl_s, msgpack blob, jid, ttl_s, blob, ...
--
-- Each pyq:result:JID becomes a list of one element, the blob, that expires after ttl_s (a list,
-- so that callers can wait for it with BLMOVE). The acker sends it in the same pipeline as, and
-- before, the ack of those jobs: a job that is acked has its result stored.
-- Returns: the number of results stored.

local prefix = ARGV[1]
local first = 2

local stored = 0
for i = first, #ARGV, 3 do
  local key = prefix .. "pyq:result:" .. ARGV[i]
  redis.call("DEL", key)
  redis.call("RPUSH", key, ARGV[i + 2])
  redis.call("EXPIRE", key, ARGV[i + 1])
  stored = stored + 1
end
return stored
