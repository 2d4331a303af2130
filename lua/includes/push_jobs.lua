--- push_jobs(queues_key, queue_key, wake_key, queue_name, payloads, first, last, wake_cap)
-- Pushes payloads[first..last] onto a Sidekiq queue list the way Sidekiq's client does
-- (SADD queues + LPUSH, head = newest) and leaves up to wake_cap wake-up markers so that
-- idle pyq workers blocked on wake_key fetch at once. Returns the number pushed.
local function push_jobs(queues_key, queue_key, wake_key, queue_name, payloads, first, last, wake_cap)
  if last < first then return 0 end
  redis.call("SADD", queues_key, queue_name)
  for i = first, last, 500 do
    redis.call("LPUSH", queue_key, unpack(payloads, i, math.min(i + 499, last)))
  end
  local n = last - first + 1
  if wake_cap > 0 then
    local markers = {}
    for i = 1, math.min(n, wake_cap) do markers[i] = "1" end
    redis.call("LPUSH", wake_key, unpack(markers))
    redis.call("LTRIM", wake_key, 0, wake_cap - 1)
  end
  return n
end
