# Loaded by `sidekiq -r`: record_worker.rb's jobs, and a server middleware that keeps the trace context
# fields of every job it runs, as opentelemetry-instrumentation-sidekiq's server middleware reads them.
require_relative "record_worker"

# Stores {"traceparent", "tracestate"} of each job as JSON in the hash test:trace_context, by jid.
class RecordTraceContext
  def call(_worker, job, _queue)
    fields = job.select { |key, _| %w[traceparent tracestate].include?(key) }
    Sidekiq.redis { |conn| conn.hset("test:trace_context", job["jid"], JSON.generate(fields)) }
    yield
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add RecordTraceContext }
end
