"""Ruby Sidekiq's API reading pyq's process registry, and sending it signals."""

from __future__ import annotations

import json
import time

import redis

from pyq.config import Config
from pyq.heartbeat import Heartbeat, make_identity, process_info
from pyq.keys import Keys
from pyq.scheduler import recover_process
from rubyhelp import requires_ruby, ruby_run
from test_heartbeat import State as HeartbeatState

JOB = '{"class":"Orders::ChargeJob","args":[42,"card"],"queue":"critical","jid":"0123456789abcdef01234567"}'

_READ_REGISTRY = """
procs = Sidekiq::ProcessSet.new.map do |p|
  { "identity" => p.identity, "concurrency" => p["concurrency"], "queues" => p.queues, "busy" => p["busy"],
    "quiet" => p["quiet"], "stopping" => p.stopping?, "started_at" => p["started_at"], "beat" => p["beat"],
    "tag" => p.tag, "rss" => p["rss"] }
end
work = []
Sidekiq::Workers.new.each do |process_id, thread_id, w|
  work << { "process" => process_id, "thread" => thread_id, "queue" => w["queue"], "run_at" => w["run_at"],
            "class" => w["payload"]["class"], "args" => w["payload"]["args"] }
end
puts JSON.generate({ "processes" => procs, "work" => work, "size" => Sidekiq::Workers.new.size })
"""

_SIGNAL = """
process = Sidekiq::ProcessSet.new.find { |p| p.identity == ARGV[0] } or abort("no process #{ARGV[0]}")
ARGV[1..].each { |sig| sig == "quiet" ? process.quiet! : process.stop! }
"""


class State(HeartbeatState):
    """The heartbeat tests' worker state, which also goes quiet on TSTP as a worker does."""

    def __init__(self) -> None:
        super().__init__(concurrency=4)

    def on_signal(self, signal: str) -> None:
        super().on_signal(signal)
        if signal == "TSTP":
            self.quiet = True


def heartbeat(r: redis.Redis) -> tuple[Heartbeat, State]:
    state = State()
    identity = make_identity("pyq-host")
    info = process_info(identity, concurrency=4, queues=[("critical", 2), ("default", 1)],
                        started_at=time.time() - 60, tag="shop")
    return Heartbeat(r, Keys(), identity, info, state, Config().heartbeat_interval_s), state


@requires_ruby
def test_ruby_api_lists_the_process_and_its_running_job(r: redis.Redis, redis_url: str) -> None:
    # Given a pyq process running one job
    hb, state = heartbeat(r)
    run_at = time.time() - 2
    state.jobs = [("tid-1", "critical", JOB.encode(), run_at)]
    hb.beat()
    # When Ruby's API reads the registry (ProcessSet.new also prunes entries without info)
    seen = json.loads(ruby_run(_READ_REGISTRY, redis_url))
    # Then it shows the process with its settings, and the job it runs
    [proc] = seen["processes"]
    assert proc["identity"] == hb.identity and proc["concurrency"] == 4 and proc["tag"] == "shop"
    assert proc["queues"] == ["critical", "default"] and proc["busy"] == 1
    assert proc["quiet"] == "false" and proc["stopping"] is False and proc["rss"] > 0
    assert abs(proc["beat"] - time.time()) < 30 and proc["started_at"] < proc["beat"]
    assert seen["work"] == [{"process": hb.identity, "thread": "tid-1", "queue": "critical", "run_at": int(run_at),
                             "class": "Orders::ChargeJob", "args": [42, "card"]}]
    assert seen["size"] == 1


@requires_ruby
def test_ruby_quiet_and_stop_reach_the_worker_on_the_next_beats(r: redis.Redis, redis_url: str) -> None:
    hb, state = heartbeat(r)
    hb.beat()
    # When the Web UI's "Quiet" then "Stop" buttons are pressed (Sidekiq::Process#quiet!, #stop!)
    ruby_run(_SIGNAL, redis_url, hb.identity, "quiet", "stop")
    # Then each beat delivers one signal, in order, and quiet shows in Ruby's view
    assert hb.beat() == "TSTP" and state.signals == ["TSTP"]
    assert hb.beat() == "TERM" and state.signals == ["TSTP", "TERM"]
    assert hb.beat() is None
    [proc] = json.loads(ruby_run(_READ_REGISTRY, redis_url))["processes"]
    assert proc["quiet"] == "true" and proc["stopping"] is True


@requires_ruby
def test_ruby_api_forgets_a_deregistered_process(r: redis.Redis, redis_url: str) -> None:
    hb, state = heartbeat(r)
    state.jobs = [("tid-1", "critical", JOB, time.time())]
    hb.beat()
    hb.deregister()
    seen = json.loads(ruby_run(_READ_REGISTRY, redis_url))
    assert seen["processes"] == [] and seen["work"] == []


@requires_ruby
def test_ruby_api_shows_no_ghost_after_recovery(r: redis.Redis, redis_url: str) -> None:
    hb, state = heartbeat(r)
    state.jobs = [("tid-1", "critical", JOB, time.time())]
    hb.beat()
    r.lpush(Keys().inflight(hb.identity), JOB)
    assert recover_process(r, Keys(), hb.identity) == 1
    seen = json.loads(ruby_run(_READ_REGISTRY, redis_url))
    assert seen["processes"] == [] and seen["work"] == [] and seen["size"] == 0
    assert r.lrange("queue:critical", 0, -1) == [JOB.encode()]
