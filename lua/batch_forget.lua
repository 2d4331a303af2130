-- batch_forget: drop members that were never pushed (a unique job whose lock was taken).
--
-- KEYS[1] batch       hash   b-BID
-- KEYS[2] jids        set    b-BID-jids
-- ARGV[1..] jids             the jids that were added by batch_add but not pushed
--
-- Returns: the number of members dropped.

local batch_key, jids_key = KEYS[1], KEYS[2]

local dropped = redis.call("SREM", jids_key, unpack(ARGV))
redis.call("HINCRBY", batch_key, "total", -dropped)
redis.call("HINCRBY", batch_key, "pending", -dropped)
return dropped
