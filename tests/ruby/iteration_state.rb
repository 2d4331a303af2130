# Reads and writes an iterable job's it-JID hash with the operations of Sidekiq 7.3's
# Sidekiq::Job::Iterable (lib/sidekiq/job/iterable.rb), which Debian's Sidekiq 6.4 lacks:
#   read JID         -> JSON {ex, cursor, rt, cancelled} as fetch_previous_iteration_state decodes them
#   write JID EX CURSOR_JSON RT -> flush_state's MULTI (HSET ex c rt, EXPIRE, HGET cancelled)
#   cancel JID       -> Sidekiq::Client#cancel! (HSETNX cancelled now, HGET, EXPIRE)
require_relative "helper"

STATE_TTL = 30 * 24 * 60 * 60
command, jid, *rest = ARGV
key = "it-#{jid}"

case command
when "read"
  state = Sidekiq.redis { |c| c.hgetall(key) }
  puts JSON.generate({"ex" => state["ex"].to_i, "cursor" => JSON.parse(state["c"]), "rt" => state["rt"].to_f,
                      "cancelled" => state["cancelled"], "ttl" => Sidekiq.redis { |c| c.ttl(key) }})
when "write"
  ex, cursor_json, rt = rest
  Sidekiq.redis do |c|
    c.multi do |m|
      m.hset(key, "ex", ex.to_i, "c", JSON.generate(JSON.parse(cursor_json)), "rt", rt.to_f)
      m.expire(key, STATE_TTL)
      m.hget(key, "cancelled")
    end
  end
when "cancel"
  result = Sidekiq.redis do |c|
    c.pipelined do |p|
      p.hsetnx(key, "cancelled", Time.now.to_i)
      p.hget(key, "cancelled")
      p.expire(key, STATE_TTL)
    end
  end
  puts result[1]
end
