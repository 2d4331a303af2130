--- push_jobs(queues_key, queue_key, wake_key, queue_name, payloads, first, last, wake_cap)
-- Pushes payloads[first..last] onto a Sidekiq queue list the way Sidekiq's client does
-- (SADD queues + LPUSH, head = newest) and leaves wake-up markers (see wake). Returns the number pushed.
--- @include "includes/wake"
local function push_jobs(queues_key, queue_key, wake_key, queue_name, payloads, first, last, wake_cap)
  if last < first then return 0 end
  redis.call("SADD", queues_key, queue_name)
  for i = first, last, 500 do
    redis.call("LPUSH", queue_key, unpack(payloads, i, math.min(i + 499, last)))
  end
  local n = last - first + 1
  wake(wake_key, n, wake_cap)
  return n
end
