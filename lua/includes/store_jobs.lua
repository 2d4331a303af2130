--- store_jobs(queues_key, queue_key, schedule_key, wake_key, queue_name, at_s, payloads, first, wake_cap)
-- Stores payloads[first..] the way Sidekiq's client does: pushed onto the queue now (at_s "", see
-- push_jobs), or added to the schedule set at at_s. Returns the number stored.
--- @include "includes/push_jobs"
local function store_jobs(queues_key, queue_key, schedule_key, wake_key, queue_name, at_s, payloads, first, wake_cap)
  if at_s == "" then
    return push_jobs(queues_key, queue_key, wake_key, queue_name, payloads, first, #payloads, wake_cap)
  end
  for i = first, #payloads do
    redis.call("ZADD", schedule_key, at_s, payloads[i])
  end
  return #payloads - first + 1
end
