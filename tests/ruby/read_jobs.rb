# Prints, as JSON, what Sidekiq's API sees in one queue and in the schedule set.
# ARGV[0] queue name
require_relative "helper"

def describe(job)
  { "klass" => job.klass, "display_class" => job.display_class, "args" => job.args, "jid" => job.jid,
    "queue" => job.queue, "created_at" => job.created_at&.to_f, "enqueued_at" => job.enqueued_at&.to_f,
    "item" => job.item }
end

queue = Sidekiq::Queue.new(ARGV.fetch(0, "default"))
scheduled = Sidekiq::ScheduledSet.new.map { |entry| describe(entry).merge("score" => entry.score, "at" => entry.at.to_f) }
puts JSON.generate("size" => queue.size, "latency" => queue.latency, "queue" => queue.map { |job| describe(job) },
                   "scheduled" => scheduled)
