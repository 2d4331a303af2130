-- fetch: move up to `count` jobs from the first non-empty queues into a process's in-flight list.
--
-- KEYS[1] inflight    list   pyq:inflight:IDENTITY, raw payloads being worked on (LPUSH)
-- KEYS[2] owners      set    pyq:inflight-owners, identities with an in-flight list
-- KEYS[3..] queue_pairs list/zset  per queue, in the order to try (weighted order comes from the
--                           caller): queue:NAME, then pyq:prio:NAME (its jobs with a non-default priority)
-- ARGV[1] identity          this process's identity, added to owners
-- ARGV[2] count             most jobs to take
--
-- Within one queue: first the prioritised jobs above the default (score < 0 in pyq:prio:NAME, lowest
-- score first), then the list from its tail (oldest first, like Sidekiq's BRPOP), then the jobs below
-- the default. A queue without prioritised jobs costs one ZRANGE on a missing key. Nothing leaves a
-- queue without landing in the in-flight list in the same step.
-- Returns: a flat array {queue_index, raw, queue_index, raw, ...}; queue_index is 1-based, one per
-- pair of KEYS[3..]. Empty when every queue is empty.

local inflight_key, owners_key = KEYS[1], KEYS[2]
local identity, wanted = ARGV[1], tonumber(ARGV[2])
local first_queue = 3

local out = {}
local function took(index, got)
  if not got or #got == 0 then return end
  redis.call("LPUSH", inflight_key, unpack(got))
  for _, raw in ipairs(got) do
    out[#out + 1] = index
    out[#out + 1] = raw
  end
  wanted = wanted - #got
end

for i = first_queue, #KEYS, 2 do
  if wanted <= 0 then break end
  local queue_key, prio_key, index = KEYS[i], KEYS[i + 1], (i - first_queue) / 2 + 1
  local above = redis.call("ZRANGE", prio_key, "-inf", "(0", "BYSCORE", "LIMIT", 0, wanted)
  if #above > 0 then
    redis.call("ZREMRANGEBYRANK", prio_key, 0, #above - 1)
    took(index, above)
  end
  if wanted > 0 then took(index, redis.call("RPOP", queue_key, wanted)) end
  if wanted > 0 then
    local below = redis.call("ZRANGE", prio_key, "(0", "+inf", "BYSCORE", "LIMIT", 0, wanted)
    if #below > 0 then
      redis.call("ZREM", prio_key, unpack(below))
      took(index, below)
    end
  end
end
if #out > 0 then
  redis.call("SADD", owners_key, identity)
end
return out
