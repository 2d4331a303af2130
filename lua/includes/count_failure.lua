--- count_failure(processed_key, processed_day_key, failed_key, failed_day_key, day_ttl_s)
-- Sidekiq's stats for a failed run: it counts as processed and as failed, in total and per day.
local function count_failure(processed_key, processed_day_key, failed_key, failed_day_key, day_ttl_s)
  for _, key in ipairs({ processed_key, processed_day_key, failed_key, failed_day_key }) do
    redis.call("INCRBY", key, 1)
  end
  redis.call("EXPIRE", processed_day_key, day_ttl_s)
  redis.call("EXPIRE", failed_day_key, day_ttl_s)
end
