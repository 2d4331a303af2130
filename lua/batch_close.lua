-- batch_close: a block that held a batch open is done pushing; fire the callbacks now due.
--
-- KEYS[1] batch       hash   b-BID
-- ARGV[1] prefix              key namespace ("" or "ns:"), for the batch's keys and callback queues
-- ARGV[2] bid                 the batch id
-- ARGV[3] now_s               epoch seconds, for the callbacks' flags and enqueued_at
-- ARGV[4] wake_cap            most markers left on a callback queue's wake list
--
-- A batch whose jobs all finished while the block still pushed completes here.
-- Returns: the number of blocks still holding it open.
--- @include "includes/batch"

local batch_key = KEYS[1]
local prefix, bid, now_s, wake_cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

if redis.call("EXISTS", batch_key) == 0 then return 0 end
local open = redis.call("HINCRBY", batch_key, "open", -1)
if open < 0 then
  redis.call("HSET", batch_key, "open", 0)
  open = 0
end
batch_check(prefix, bid, now_s, wake_cap)
return open
