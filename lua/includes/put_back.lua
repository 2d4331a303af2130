--- put_back(prefix, queue_name, raw, job, front)
-- Pushes raw (decoded: job, or nil) back to its queue NAME where its priority says: a default-priority
-- job onto the list queue:NAME (RPUSH at the tail, taken next, when front; LPUSH behind the others
-- otherwise), a prioritised one into pyq:prio:NAME (see push_prio), so its priority survives a
-- put-back, a recovery and a re-enqueue. The caller adds NAME to queues and leaves wake markers.
--- @include "includes/priority_of"
--- @include "includes/push_prio"
local function put_back(prefix, queue_name, raw, job, front)
  local priority = priority_of(job)
  if priority ~= 0 then
    push_prio(prefix .. "pyq:prio:" .. queue_name, prefix .. "pyq:prio-seq", raw, priority, front)
  elseif front then
    redis.call("RPUSH", prefix .. "queue:" .. queue_name, raw)
  else
    redis.call("LPUSH", prefix .. "queue:" .. queue_name, raw)
  end
end
