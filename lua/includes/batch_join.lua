--- batch_join(batch_key, jids_key, jids) -> new members, or -1 when the batch is gone
-- Makes jids members of the batch b-BID (b-BID-jids) and counts the new ones in total and pending;
-- a jid already a member is not counted again.
local function batch_join(batch_key, jids_key, jids)
  local expires_at = redis.call("HGET", batch_key, "expires_at")
  if not expires_at then return -1 end
  local added = 0
  for i = 1, #jids, 5000 do
    added = added + redis.call("SADD", jids_key, unpack(jids, i, math.min(i + 4999, #jids)))
  end
  redis.call("HINCRBY", batch_key, "total", added)
  redis.call("HINCRBY", batch_key, "pending", added)
  redis.call("EXPIREAT", jids_key, expires_at)
  return added
end
