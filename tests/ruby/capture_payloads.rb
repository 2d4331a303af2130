# Pushes one job of each kind with Ruby's Sidekiq::Client and prints the stored payloads as JSON:
# {"normal": job, "scheduled": {"score": s, "job": job}, "bulk": [job, job], "activejob": job,
#  "activejob_scheduled": {"score": s, "job": job}}. Each kind goes to its own queue so they do not mix.
# The golden file is made with an empty Redis:
#   REDIS_URL=redis://... ruby tests/ruby/capture_payloads.rb --pretty > tests/fixtures/ruby_payloads.json
require_relative "helper"
require "active_job"
require "active_job/queue_adapters/sidekiq_adapter"

ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new(nil)

class HardJob
  include Sidekiq::Worker
  sidekiq_options queue: "golden_normal", retry: 5, backtrace: true, tags: ["alpha"]
  def perform(*); end
end

class GreetJob < ActiveJob::Base
  queue_as :golden_aj
  def perform(name, options, greeting:, count: 1); end
end

def newest(queue)
  JSON.parse(Sidekiq.redis { |c| c.lindex("queue:#{queue}", 0) })
end

def scheduled(jid)
  entry = Sidekiq::ScheduledSet.new.find_job(jid)
  { "score" => entry.score, "job" => JSON.parse(entry.value) }
end

HardJob.perform_async(1, "two", 3.5, { "k" => [nil, true] }, "café/ü")
sched_jid = HardJob.set(queue: "golden_sched").perform_in(3600, 42)
Sidekiq::Client.push_bulk("class" => "BulkJob", "queue" => "golden_bulk", "args" => [[1], [2]])
GreetJob.perform_later("bob", { sym: 1, "str" => "s" }, greeting: "hi", count: 2)
aj_sched = GreetJob.set(wait: 3600).perform_later("later", {}, greeting: "yo")

captured = {
  "normal" => newest("golden_normal"),
  "scheduled" => scheduled(sched_jid),
  "bulk" => Sidekiq.redis { |c| c.lrange("queue:golden_bulk", 0, -1) }.reverse.map { |raw| JSON.parse(raw) },
  "activejob" => newest("golden_aj"),
  "activejob_scheduled" => scheduled(aj_sched.provider_job_id)
}
puts(ARGV.include?("--pretty") ? JSON.pretty_generate(captured) : JSON.generate(captured))
