-- batch_open: create a batch, or open an existing one to push more jobs into it.
--
-- KEYS[1] batch       hash   b-BID (fields: see includes/batch)
-- KEYS[2] index       zset   batches, score = the batch's expiry (epoch s)
-- ARGV[1] prefix              key namespace ("" or "ns:"), to build b-PARENT and b-BID-jids
-- ARGV[2] bid                 the batch id
-- ARGV[3] now_s               epoch seconds: created_at, and the index's trim of expired batches
-- ARGV[4] expires_at_s        when every key of the batch expires (epoch s; the keys at the next whole second)
-- ARGV[5] guard               1: hold the batch open (open + 1) until batch_close; 0: not
-- ARGV[6] description         free text, shown by pyq batches and the dashboard
-- ARGV[7] parent              the enclosing batch's id, "" for none
-- ARGV[8] time_style          "float" or "ms": how callbacks' enqueued_at is written
-- ARGV[9..] callbacks         event, queue, jid, payload (without enqueued_at), ... for each callback
--
-- A new batch with a parent becomes the member "b-BID" of the parent, which waits for it.
-- Returns: 1 created, 0 opened again, -1 when the batch should exist (no description given) but is gone.

local batch_key, index_key = KEYS[1], KEYS[2]
local prefix, bid, now_s, expires_at_s = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local guard, description, parent, time_style = tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
local expires_at_whole_s = math.ceil(tonumber(expires_at_s))
local first_callback = 9

if redis.call("EXISTS", batch_key) == 1 then
  if guard > 0 then redis.call("HINCRBY", batch_key, "open", guard) end
  return 0
end
if time_style == "" then return -1 end
redis.call("HSET", batch_key, "created_at", now_s, "expires_at", expires_at_whole_s, "description", description,
  "parent", parent, "ts", time_style, "open", guard, "total", 0, "pending", 0, "failures", 0, "kids", 0)
for i = first_callback, #ARGV, 4 do
  local event = ARGV[i]
  redis.call("HSET", batch_key, "cb-" .. event .. "-queue", ARGV[i + 1], "cb-" .. event .. "-jid", ARGV[i + 2],
    "cb-" .. event, ARGV[i + 3])
end
redis.call("EXPIREAT", batch_key, expires_at_whole_s)
redis.call("ZREMRANGEBYSCORE", index_key, "-inf", now_s)
redis.call("ZADD", index_key, expires_at_s, bid)
if parent ~= "" then
  local parent_key = prefix .. "b-" .. parent
  if redis.call("SADD", parent_key .. "-jids", "b-" .. bid) == 1 then
    redis.call("HINCRBY", parent_key, "kids", 1)
  end
end
return 1
