# Ruby side of bench/enqueue_bench.py: enqueue N jobs with Sidekiq's client on ENV["REDIS_URL"]
# and print {"seconds": elapsed} as JSON. Only the enqueue loop is timed, not Ruby's start-up.
# ARGV[0] mode   "perform_async" (one push per job) or "push_bulk" (1000 jobs per call)
# ARGV[1] jobs   how many jobs to enqueue
require "json"
require "sidekiq"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

class BenchJob
  include Sidekiq::Worker
  def perform(*); end
end

mode, jobs = ARGV.fetch(0), Integer(ARGV.fetch(1))
Sidekiq.redis { |conn| conn.ping } # connect before timing

started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
case mode
when "perform_async"
  jobs.times { |i| BenchJob.perform_async(i, "payload") }
when "push_bulk"
  (0...jobs).each_slice(1000) { |slice| Sidekiq::Client.push_bulk("class" => BenchJob, "args" => slice.map { |i| [i, "payload"] }) }
else
  abort "unknown mode #{mode}"
end
puts JSON.generate("seconds" => Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
