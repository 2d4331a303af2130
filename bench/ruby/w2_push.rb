# W2 through Ruby's client: N jobs, one every SPACING_MS, over three queues in turn; each job's
# argument is the wall clock in microseconds just before its push (what bench/jobs.py records).
require "sidekiq"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client { |config| config.redis = { url: ENV.fetch("BENCH_REDIS_URL") } }
n, spacing_ms = Integer(ARGV[0]), Float(ARGV[1])
queues = ARGV[2].split(",")
start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
n.times do |i|
  delay = start + i * spacing_ms / 1000.0 - Process.clock_gettime(Process::CLOCK_MONOTONIC)
  sleep(delay) if delay > 0
  now_us = Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
  Sidekiq::Client.push("class" => "BenchJob", "queue" => queues[i % queues.size], "args" => [now_us])
end
