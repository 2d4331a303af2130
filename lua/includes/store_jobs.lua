--- store_jobs(queues_key, queue_key, schedule_key, wake_key, prio_key, seq_key, queue_name, at_s, priority, payloads,
---            first, wake_cap)
-- Stores payloads[first..] the way Sidekiq's client does: added to the schedule set at at_s (whatever
-- their priority: promotion routes them), else pushed now, onto the plain queue list at the default
-- priority 0 (push_jobs) or into the queue's priority zset (push_prio). Returns the number stored.
--- @include "includes/push_jobs"
--- @include "includes/push_prio"
local function store_jobs(queues_key, queue_key, schedule_key, wake_key, prio_key, seq_key, queue_name, at_s,
                          priority, payloads, first, wake_cap)
  if at_s ~= "" then
    for i = first, #payloads do
      redis.call("ZADD", schedule_key, at_s, payloads[i])
    end
    return #payloads - first + 1
  end
  if priority == 0 then
    return push_jobs(queues_key, queue_key, wake_key, queue_name, payloads, first, #payloads, wake_cap)
  end
  redis.call("SADD", queues_key, queue_name)
  for i = first, #payloads do
    push_prio(prio_key, seq_key, payloads[i], priority, false)
  end
  wake(wake_key, #payloads - first + 1, wake_cap)
  return #payloads - first + 1
end
