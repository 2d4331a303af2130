# Shared setup for the Ruby scripts the tests run: Sidekiq's client on ENV["REDIS_URL"].
require "json"
require "sidekiq"
require "sidekiq/api"

# Debian pairs sidekiq 6.4.1 with redis-rb 4.8, which warns about calls Sidekiq 6.4 still makes.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.logger.level = Logger::WARN

# Numeric timestamps as epoch seconds; Time objects from the API become floats.
def epoch(value)
  value.respond_to?(:to_f) ? value.to_f : value
end
