# The benchmark job for Ruby Sidekiq: `sidekiq -r ./sidekiq_jobs.rb -c 10 -e production`.
# Same body as bench/jobs.py: below LAT_THRESHOLD one INCR on the counter Redis, at or above it
# the enqueue time in epoch microseconds, recorded as a latency with the INCR in one pipeline.
require "sidekiq"
require "redis"
require "connection_pool"

REDIS_URL = ENV.fetch("BENCH_REDIS_URL")
COUNTER_URL = ENV.fetch("BENCH_COUNTER_URL")
COUNTER_KEY = "bench:done"
LAT_KEY = "bench:lat"
LAT_THRESHOLD = 10**15

# Debian's redis-rb 4.8 warns on every BRPOP Sidekiq 6.4 issues (once per job) unless silenced.
Redis.silence_deprecations = true
Sidekiq.configure_server { |config| config.redis = { url: REDIS_URL } }
# No per-job start/done INFO lines: pyq's bench config logs at WARNING too.
Sidekiq.logger.level = Logger::WARN

COUNTER = ConnectionPool.new(size: Integer(ENV.fetch("BENCH_THREADS", "10")), timeout: 5) { Redis.new(url: COUNTER_URL) }

class BenchJob
  include Sidekiq::Worker

  def perform(x)
    if x >= LAT_THRESHOLD
      lat = Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond) - x
      COUNTER.with do |r|
        r.pipelined do |p|
          p.rpush(LAT_KEY, lat)
          p.incr(COUNTER_KEY)
        end
      end
    else
      COUNTER.with { |r| r.incr(COUNTER_KEY) }
    end
  end
end

# W0: no body at all, so what a job costs is the machinery's alone.
class NoopJob
  include Sidekiq::Worker

  def perform(x); end
end

# W3: an I/O-bound job, 50 ms of waiting, then the counter.
class BenchIoJob
  include Sidekiq::Worker

  def perform(x)
    sleep 0.05
    COUNTER.with { |r| r.incr(COUNTER_KEY) }
  end
end

# Mixed durations: holds its slot until the run pushes a release token.
class MixedLongJob
  include Sidekiq::Worker

  def perform(x)
    COUNTER.with do |r|
      r.incr("bench:long")
      r.blpop("bench:release", timeout: 300)
    end
  end
end

# Mixed durations: records when it started and ended (wall clock, microseconds).
class MixedShortJob
  include Sidekiq::Worker

  def perform(x)
    start_us = Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
    end_us = Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
    COUNTER.with { |r| r.rpush("bench:mixed", "#{start_us},#{end_us}") }
  end
end
