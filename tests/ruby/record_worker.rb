# Loaded by `sidekiq -r`: jobs that record what they ran into Redis, and a fast scheduled-job poller.
require_relative "helper"

# Sidekiq 6.4: poll the schedule about every second instead of every 5 s per process.
Sidekiq.options[:poll_interval_average] = 1

# Appends {"jid", "args", "class"} as JSON to the list test:recorded.
class RecordJob
  include Sidekiq::Worker

  def perform(*args)
    entry = { "jid" => jid, "args" => args, "class" => self.class.name }
    Sidekiq.redis { |conn| conn.rpush("test:recorded", JSON.generate(entry)) }
  end
end

module Interop
  # The same job under a namespaced Ruby constant, as Ruby apps usually name them.
  class RecordJob < ::RecordJob; end
end

# Sleeps for the given seconds, so tests can see it running (the Busy page, `pyq busy`).
class SlowJob
  include Sidekiq::Worker

  def perform(seconds)
    sleep seconds
  end
end
