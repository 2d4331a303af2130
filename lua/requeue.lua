-- requeue: put unfinished jobs back at the front of their queues (shutdown, buffered jobs).
--
-- KEYS[1] inflight    list   pyq:inflight:IDENTITY
-- KEYS[2] queues      set    names of known queues
-- ARGV[1] prefix             key namespace ("" or "ns:"), to build queue:NAME and pyq:wake:NAME
-- ARGV[2] wake_cap           most markers left on each wake list
-- ARGV[3..] pairs            queue name, raw payload, queue name, raw payload, ...
--
-- A payload is pushed back only if it was still in the in-flight list, so a job that finished
-- (or was recovered by another process) meanwhile is not run twice by this call. RPUSH puts it
-- at the tail, where it is taken next (Sidekiq's put-back); a prioritised job goes back into
-- pyq:prio:NAME ahead of the others of its priority (see put_back).
-- Returns: the number of jobs pushed back.
--- @include "includes/wake"
--- @include "includes/queue_of"
--- @include "includes/put_back"

local inflight_key, queues_key = KEYS[1], KEYS[2]
local prefix, wake_cap = ARGV[1], tonumber(ARGV[2])
local first_pair = 3

local pushed = 0
for i = first_pair, #ARGV, 2 do
  local queue_name, raw = ARGV[i], ARGV[i + 1]
  if redis.call("LREM", inflight_key, -1, raw) > 0 then
    local _, job = queue_of(raw)
    put_back(prefix, queue_name, raw, job, true)
    redis.call("SADD", queues_key, queue_name)
    wake(prefix .. "pyq:wake:" .. queue_name, 1, wake_cap)
    pushed = pushed + 1
  end
end
return pushed
