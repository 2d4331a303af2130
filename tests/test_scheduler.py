"""The poller: promotion of due jobs, its random interval, and recovery of orphaned in-flight jobs."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import free_port, run_loop_for
from pyq.config import Config
from pyq.keys import Keys
from pyq.scheduler import Poller, prune_processes, recover_orphans, recover_process
from pyq.scripts import DeadLimits

NOW = 1_755_400_000.5


def job(jid: str, queue: str = "default", **extra: object) -> str:
    return json.dumps({"class": "HardJob", "args": [jid], "queue": queue, "jid": jid, **extra},
                      separators=(",", ":"))


def make_poller(redis: Any, keys: Keys, **options: Any) -> Poller:
    """A Poller with Config's defaults, ``options`` overriding them."""
    config = Config()
    settings = {"time_style": config.time_style, "recovery_timeout_s": config.recovery_timeout_s,
                "average_scheduled_poll_interval_s": config.average_scheduled_poll_interval_s,
                "poll_interval_average_s": config.poll_interval_average_s, "dead": DeadLimits.of(config)}
    return Poller(redis, keys, **{**settings, **options})


class LowRandom(random.Random):
    """Always draws the given fraction, so bounds and waits are exact."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# --- next_interval -----------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 3, 9])
def test_interval_below_10_processes_is_half_to_one_and_a_half_of_count_times_average(count: int) -> None:
    avg = max(count, 1) * 5.0
    assert make_poller(None, Keys(), rng=LowRandom(0.0)).next_interval(count) == pytest.approx(avg / 2)
    assert make_poller(None, Keys(), rng=LowRandom(0.999999)).next_interval(count) == pytest.approx(1.5 * avg, rel=1e-5)
    draws = [make_poller(None, Keys()).next_interval(count) for _ in range(300)]
    assert all(avg / 2 <= d <= 1.5 * avg for d in draws)


def test_interval_from_10_processes_is_zero_to_twice_count_times_average() -> None:
    poller = make_poller(None, Keys(), average_scheduled_poll_interval_s=2.0, rng=random.Random(7))
    draws = [poller.next_interval(20) for _ in range(500)]
    assert all(0 <= d <= 80 for d in draws)
    assert min(draws) < 10 and max(draws) > 70  # the whole range is used
    assert sum(draws) / len(draws) == pytest.approx(40, rel=0.15)


def test_fixed_average_ignores_the_process_count_and_the_10_s_initial_wait() -> None:
    poller = make_poller(None, Keys(), poll_interval_average_s=1.0, rng=LowRandom(0.0))
    assert poller.next_interval(5) == 0.5 and poller.initial_wait() == 0.0
    assert make_poller(None, Keys(), rng=LowRandom(0.5)).initial_wait() == 12.5


def test_bad_settings_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="batch"):
        make_poller(None, Keys(), batch=0)
    with pytest.raises(ValueError, match="'seconds'"):
        make_poller(None, Keys(), time_style="seconds")  # type: ignore[arg-type]


# --- promote_due ---------------------------------------------------------------------


def test_promote_moves_retry_then_schedule_only_when_due(r: redis.Redis) -> None:
    r.zadd("retry", {job("r1", "low", retry_count=0): NOW - 10, job("r2"): NOW + 10})
    r.zadd("schedule", {job("s1", "low"): NOW - 1, job("s2"): NOW + 1})
    moved = make_poller(r, Keys()).promote_due(NOW)
    assert moved == 2
    low = [json.loads(x) for x in r.lrange("queue:low", 0, -1)]
    # retry is handled first, so its job was pushed first and sits at the tail (taken first)
    assert [j["jid"] for j in low] == ["s1", "r1"]
    assert all(j["enqueued_at"] == NOW for j in low) and low[1]["retry_count"] == 0
    assert r.zcard("retry") == 1 and r.zcard("schedule") == 1
    assert r.smembers("queues") == {b"low"}
    assert r.llen("pyq:wake:low") == 2


def test_promote_loops_past_one_batch(r: redis.Redis) -> None:
    r.zadd("schedule", {job(f"s{i}"): NOW - i for i in range(7)})
    r.zadd("retry", {job(f"r{i}"): NOW - i for i in range(3)})
    assert make_poller(r, Keys(), batch=3).promote_due(NOW) == 10
    assert r.llen("queue:default") == 10 and not r.exists("schedule", "retry")
    assert r.llen("pyq:wake:default") <= 16


def test_promote_writes_millisecond_enqueued_at_when_asked(r: redis.Redis) -> None:
    r.zadd("schedule", {job("s1"): NOW - 1})
    make_poller(r, Keys(), time_style="ms").promote_due(NOW)
    assert json.loads(r.lindex("queue:default", 0))["enqueued_at"] == int(NOW * 1000)


def test_promote_in_a_namespace(r: redis.Redis) -> None:
    r.zadd("ns:schedule", {job("s1", "low"): NOW - 1})
    r.zadd("schedule", {job("other"): NOW - 1})
    assert make_poller(r, Keys("ns")).promote_due(NOW) == 1
    assert r.llen("ns:queue:low") == 1 and r.smembers("ns:queues") == {b"low"}
    assert r.zcard("schedule") == 1 and not r.exists("queue:low")


# --- recovery --------------------------------------------------------------------------


def give_inflight(r: redis.Redis, identity: str, raws: list[str], keys: Keys | None = None) -> None:
    """What a worker's fetch leaves behind: its in-flight list and its owner entry."""
    keys = keys or Keys()
    for raw in raws:
        r.lpush(keys.inflight(identity), raw)
    r.sadd(keys.inflight_owners, identity)


def register(r: redis.Redis, identity: str, beat: float, keys: Keys | None = None) -> None:
    keys = keys or Keys()
    r.sadd(keys.processes, identity)
    r.hset(keys.process(identity), mapping={"info": "{}", "beat": repr(beat)})
    r.hset(keys.process_work(identity), "t1", "{}")
    r.hset(keys.process_workers(identity), "t1", "{}")


def test_forced_recovery_pushes_back_to_the_tail_in_fetch_order(r: redis.Redis) -> None:
    # Given a live-looking process with three fetched jobs, one of them unreadable
    r.rpush("queue:low", job("waiting", "low"))
    give_inflight(r, "h:1:a", [job("first", "low"), "not json{", job("second", "low")])
    register(r, "h:1:a", NOW)
    # When its supervisor saw it die
    assert recover_process(r, Keys(), "h:1:a", now_s=NOW) == 3
    # Then the jobs are next in line, oldest fetched first, and the garbage is kept in default
    assert [json.loads(x)["jid"] for x in r.lrange("queue:low", 0, -1)] == ["waiting", "second", "first"]
    assert r.lrange("queue:default", 0, -1) == [b"not json{"]
    assert r.smembers("queues") == {b"low", b"default"}
    assert r.llen("pyq:wake:low") == 2 and r.llen("pyq:wake:default") == 1
    assert not r.exists("pyq:inflight:h:1:a", "h:1:a", "h:1:a:work", "h:1:a:workers")
    assert r.smembers("pyq:inflight-owners") == set() and r.smembers("processes") == set()


def test_recovery_of_a_live_process_changes_nothing(r: redis.Redis) -> None:
    give_inflight(r, "h:1:a", [job("j1")])
    register(r, "h:1:a", NOW - 30)
    assert recover_process(r, Keys(), "h:1:a", now_s=NOW, stale_after_s=60) == -1
    assert r.llen("pyq:inflight:h:1:a") == 1 and not r.exists("queue:default")
    assert r.sismember("processes", "h:1:a") and r.exists("h:1:a")


@pytest.mark.parametrize("beat", [NOW - 61, None])
def test_recovery_of_a_stale_or_vanished_process(r: redis.Redis, beat: float | None) -> None:
    give_inflight(r, "h:1:a", [job("j1"), job("j2")])
    if beat is not None:
        register(r, "h:1:a", beat)
    assert recover_process(r, Keys(), "h:1:a", now_s=NOW, stale_after_s=60) == 2
    assert r.llen("queue:default") == 2 and not r.exists("pyq:inflight:h:1:a", "h:1:a")
    assert recover_process(r, Keys(), "h:1:a", now_s=NOW, stale_after_s=60) == 0


def test_recover_orphans_skips_the_live_owner(r: redis.Redis) -> None:
    give_inflight(r, "live:1:a", [job("l1")])
    register(r, "live:1:a", NOW - 2)
    give_inflight(r, "dead:2:b", [job("d1", "low"), job("d2", "low")])
    assert recover_orphans(r, Keys(), now_s=NOW, stale_after_s=60) == {"dead:2:b": 2}
    assert r.smembers("pyq:inflight-owners") == {b"live:1:a"}
    assert r.llen("pyq:inflight:live:1:a") == 1 and r.llen("queue:low") == 2
    assert recover_orphans(r, Keys(), now_s=NOW, stale_after_s=60) == {}


def test_recovery_in_a_namespace(r: redis.Redis) -> None:
    keys = Keys("ns")
    give_inflight(r, "h:1:a", [job("j1", "low")], keys)
    register(r, "h:1:a", NOW - 100, keys)
    assert recover_orphans(r, keys, now_s=NOW, stale_after_s=Config().recovery_timeout_s) == {"h:1:a": 1}
    assert r.llen("ns:queue:low") == 1 and r.smembers("ns:queues") == {b"low"}
    assert r.llen("ns:pyq:wake:low") == 1
    assert r.keys("*") and all(k.startswith(b"ns:") for k in r.keys("*"))


_RECOVER_SCRIPT = """
import sys, redis
from pyq.keys import Keys
from pyq.scheduler import recover_orphans
conn = redis.Redis.from_url(sys.argv[1])
while conn.get("go") is None:
    pass
print(sum(recover_orphans(conn, Keys(), stale_after_s=60).values()))
"""


def test_concurrent_recovery_from_several_processes_pushes_each_job_once(r: redis.Redis, redis_url: str) -> None:
    # Given 20 dead owners with 25 jobs each
    jids = set()
    for p in range(20):
        raws = [job(f"{p}-{i}", f"q{i % 3}") for i in range(25)]
        give_inflight(r, f"dead:{p}:x", raws)
        jids |= {f"{p}-{i}" for i in range(25)}
    # When six OS processes recover at the same moment
    procs = [subprocess.Popen([sys.executable, "-c", _RECOVER_SCRIPT, redis_url], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    try:
        time.sleep(0.3)
        r.set("go", 1)
        totals = [int(p.communicate(timeout=20)[0]) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait(5)
    # Then every job is back exactly once, and the reported totals agree
    back = [json.loads(x)["jid"] for q in ("q0", "q1", "q2") for x in r.lrange(f"queue:{q}", 0, -1)]
    assert sorted(back) == sorted(jids) and len(back) == 500
    assert sum(totals) == 500
    assert not r.smembers("pyq:inflight-owners") and not r.keys("pyq:inflight:*")


_LIVE_WORKER = """
import sys, threading, redis
from pyq.heartbeat import Heartbeat, make_identity, process_info
from pyq.keys import Keys
conn, keys = redis.Redis.from_url(sys.argv[1]), Keys()
identity = make_identity()
for i in range(3):
    conn.lpush(keys.inflight(identity), '{"class":"HardJob","args":[%d],"queue":"low"}' % i)
conn.sadd(keys.inflight_owners, identity)

class State:
    concurrency, quiet = 3, False
    def busy_jobs(self): return []
    def on_signal(self, signal): pass

hb = Heartbeat(conn, keys, identity, process_info(identity, concurrency=3, queues=[("low", 0)], started_at=0),
               State(), interval_s=0.05)
hb.beat()
print(identity, flush=True)
hb.run(threading.Event())
"""


def test_a_killed_worker_is_recovered_once_its_heartbeat_is_stale(r: redis.Redis, redis_url: str) -> None:
    # Given a worker process that beats and holds three fetched jobs
    with subprocess.Popen([sys.executable, "-c", _LIVE_WORKER, redis_url], stdout=subprocess.PIPE, text=True) as proc:
        try:
            identity = proc.stdout.readline().strip()  # type: ignore[union-attr]
            assert identity and r.llen(f"pyq:inflight:{identity}") == 3
            # While it is alive, nothing is recovered
            assert recover_orphans(r, Keys(), stale_after_s=60) == {}
        finally:
            # When it is SIGKILLed
            proc.kill()
            proc.wait(5)
    # Then once its beat is older than the timeout (clock moved on), its jobs are back
    assert recover_orphans(r, Keys(), stale_after_s=60) == {}
    assert recover_orphans(r, Keys(), now_s=time.time() + 61, stale_after_s=60) == {identity: 3}
    assert sorted(json.loads(x)["args"][0] for x in r.lrange("queue:low", 0, -1)) == [0, 1, 2]
    assert not r.sismember("processes", identity) and not r.exists(identity)


# --- pruning and the run loop ----------------------------------------------------------


def test_prune_drops_members_without_info_at_most_once_a_minute(r: redis.Redis) -> None:
    register(r, "live:1:a", NOW)
    r.sadd("processes", "gone:2:b", "noinfo:3:c")
    r.hset("noinfo:3:c", "beat", "1.0")
    assert prune_processes(r, Keys()) == 2
    assert r.smembers("processes") == {b"live:1:a"} and 55 <= r.ttl("process_cleanup") <= 60
    r.sadd("processes", "gone:4:d")
    assert prune_processes(r, Keys()) == 0 and r.scard("processes") == 2


def test_run_promotes_and_recovers_until_stopped(r: redis.Redis) -> None:
    r.zadd("schedule", {job("s1"): time.time() - 1})
    give_inflight(r, "dead:1:a", [job("d1")])
    poller = make_poller(r, Keys(), poll_interval_average_s=0.02, rng=LowRandom(0.0))
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while r.llen("queue:default") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and r.llen("queue:default") == 2
    assert r.exists("process_cleanup")


def test_run_survives_an_unreachable_redis_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    poller = make_poller(down, Keys(), poll_interval_average_s=0.01, rng=LowRandom(0.0))
    cycles: list[int] = []
    real_cycle = poller.cycle
    poller.cycle = lambda now_s=None: (cycles.append(1), real_cycle(now_s))[1]  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="pyq.scheduler"):
        stopped = run_loop_for(poller.run, 0.3)
    assert stopped and len(cycles) >= 3
    assert len([rec for rec in caplog.records if rec.levelno >= logging.ERROR]) == 1
    down.close()


@pytest.mark.parametrize("orphan_scan", [False, True])
def test_recovery_frees_the_runtime_lock_a_dead_worker_held(r: redis.Redis, client, orphan_scan: bool) -> None:
    from pyq import unique

    # Given a while_executing job whose dead worker holds its :RUN lock
    raw = json.dumps(unique.prepare({"class": "Sync", "args": [7], "queue": "default", "jid": "j" * 24,
                                     "lock": "while_executing"}))
    job_ = json.loads(raw)
    assert unique.Lock(r, Keys(), job_, ":RUN").take()[0]
    give_inflight(r, "dead:1:x", [raw])
    # When the worker's jobs are recovered (by its supervisor, or by a survivor's orphan scan)
    if orphan_scan:
        assert recover_orphans(r, Keys(), stale_after_s=60) == {"dead:1:x": 1}
    else:
        assert recover_process(r, Keys(), "dead:1:x") == 1
    # Then the job is back and its runtime lock is free for the next run
    assert r.lrange("queue:default", 0, -1) == [raw.encode()]
    assert r.exists(f"{job_['lock_digest']}:RUN:LOCKED") == 0
