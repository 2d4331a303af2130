-- fetch: move up to `count` jobs from the first non-empty queues into a process's in-flight list.
--
-- KEYS[1] inflight    list   pyq:inflight:IDENTITY, raw payloads being worked on (LPUSH)
-- KEYS[2] owners      set    pyq:inflight-owners, identities with an in-flight list
-- KEYS[3..] queue     list   queue:NAME, one key per queue, in the order to try (weighted order comes from the caller)
-- ARGV[1] identity          this process's identity, added to owners
-- ARGV[2] count             most jobs to take
--
-- Jobs are taken from the tail (oldest first), like Sidekiq's BRPOP. Nothing leaves a queue
-- without landing in the in-flight list in the same step.
-- Returns: a flat array {queue_index, raw, queue_index, raw, ...}; queue_index is 1-based
-- into KEYS[3..]. Empty when every queue is empty.

local inflight_key, owners_key = KEYS[1], KEYS[2]
local identity, wanted = ARGV[1], tonumber(ARGV[2])
local first_queue = 3

local out = {}
for i = first_queue, #KEYS do
  if wanted <= 0 then break end
  local got = redis.call("RPOP", KEYS[i], wanted)
  if got then
    redis.call("LPUSH", inflight_key, unpack(got))
    for _, raw in ipairs(got) do
      out[#out + 1] = i - first_queue + 1
      out[#out + 1] = raw
    end
    wanted = wanted - #got
  end
end
if #out > 0 then
  redis.call("SADD", owners_key, identity)
end
return out
