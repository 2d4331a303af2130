--- wake(wake_key, n, wake_cap)
-- Leaves one wake-up marker per new job, at most wake_cap, so idle pyq workers blocked on wake_key
-- fetch at once; the list never holds more than wake_cap markers (wake_cap 0 = leave none).
local function wake(wake_key, n, wake_cap)
  if wake_cap <= 0 or n <= 0 then return end
  local markers = {}
  for i = 1, math.min(n, wake_cap) do markers[i] = "1" end
  redis.call("LPUSH", wake_key, unpack(markers))
  redis.call("LTRIM", wake_key, 0, wake_cap - 1)
end
