"""The process registry as Sidekiq's UI reads it: hash fields, info JSON, work hash, signals."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import free_port, run_loop_for
from pyq.fetch import QueueOrder, queue_mode
from pyq.heartbeat import Heartbeat, make_identity, process_info
from pyq.keys import Keys

NOW = 1_755_400_000.25
JOB = '{"class":"HardJob","args":[1,"x"],"queue":"critical","jid":"abc"}'


class State:
    """A worker's state as the heartbeat sees it: plain attributes, signals recorded."""

    def __init__(self, concurrency: int = 5) -> None:
        self.concurrency = concurrency
        self.quiet = False
        self.jobs: list[tuple[str, str, bytes | str, float]] = []
        self.signals: list[str] = []

    def busy_jobs(self) -> list[tuple[str, str, bytes | str, float]]:
        return list(self.jobs)

    def on_signal(self, signal: str) -> None:
        self.signals.append(signal)


def make(r: redis.Redis, keys: Keys | None = None, state: State | None = None) -> tuple[Heartbeat, State]:
    state = state or State()
    identity = "web.1:4242:0123456789ab"
    info = process_info(identity, concurrency=state.concurrency, queues=[("critical", 3), ("default", 1)],
                        started_at=NOW - 100, tag="app", labels=["blue"])
    return Heartbeat(r, keys or Keys(), identity, info, state, interval_s=0.01), state


def test_identity_has_host_pid_and_12_hex_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNO", raising=False)
    host, pid, nonce = make_identity("box").rsplit(":", 2)
    assert (host, int(pid)) == ("box", os.getpid())
    assert len(nonce) == 12 and int(nonce, 16) >= 0
    assert make_identity("box") != make_identity("box")
    monkeypatch.setenv("DYNO", "worker.3")
    assert make_identity("box").startswith("worker.3:")


def test_info_json_has_the_keys_every_sidekiq_ui_reads() -> None:
    info = process_info("h:12:aaaaaaaaaaaa", concurrency=7, queues=[("a", 2), ("b", 1), ("a", 5)], started_at=10)
    assert info["hostname"] == "h" and info["pid"] == 12 and info["identity"] == "h:12:aaaaaaaaaaaa"
    assert info["started_at"] == 10.0 and isinstance(info["started_at"], float)
    assert info["concurrency"] == 7 and info["queues"] == ["a", "b"]
    assert info["weights"] == [{"a": 2, "b": 1}]
    assert info["capsules"] == {"default": {"concurrency": 7, "mode": "weighted", "weights": {"a": 2, "b": 1}}}
    assert isinstance(info["version"], str) and info["tag"] == "" and info["labels"] == []
    assert (queue_mode([0, 0]), queue_mode([1, 1]), queue_mode([2, 1])) == ("strict", "random", "weighted")


def test_the_fetch_order_and_the_registry_report_one_queue_mode() -> None:
    # Given weights where "all 0 or 1" and Sidekiq's "all 1" disagree
    for weights in ([0, 1], [1, 0, 1], [0, 0], [1, 1], [3, 1]):
        queues = [(f"q{i}", w) for i, w in enumerate(weights)]
        # Then the fetch order and the heartbeat's info name the same mode, Sidekiq's
        info = process_info("h:1:aaaaaaaaaaaa", concurrency=1, queues=queues, started_at=0)
        assert QueueOrder(queues).mode == info["capsules"]["default"]["mode"] == queue_mode(weights)
    assert queue_mode([0, 1]) == "weighted"


def test_beat_writes_process_hash_fields_and_types(r: redis.Redis) -> None:
    hb, _ = make(r)
    assert hb.beat(NOW) is None
    ident = hb.identity
    assert r.smembers("processes") == {ident.encode()}
    fields = {k.decode(): v.decode() for k, v in r.hgetall(ident).items()}
    assert set(fields) == {"info", "busy", "beat", "quiet", "rss", "rtt_us", "concurrency"}
    assert fields["busy"] == "0" and fields["quiet"] == "false" and fields["concurrency"] == "5"
    assert float(fields["beat"]) == NOW and "." in fields["beat"]
    assert int(fields["rss"]) > 1000 and int(fields["rtt_us"]) >= 0
    info = json.loads(fields["info"])
    assert info["identity"] == ident and info["tag"] == "app" and info["labels"] == ["blue"]
    assert 55 <= r.ttl(ident) <= 60
    assert not r.exists(f"{ident}:work", f"{ident}:workers")


def test_work_hash_holds_running_jobs_under_both_names(r: redis.Redis) -> None:
    hb, state = make(r)
    state.jobs = [("t1", "critical", JOB.encode(), NOW - 3.7), ("t2", "default", JOB, NOW)]
    state.quiet = True
    hb.beat(NOW)
    ident = hb.identity
    assert r.hget(ident, "busy") == b"2" and r.hget(ident, "quiet") == b"true"
    for key in (f"{ident}:work", f"{ident}:workers"):
        work = {k.decode(): json.loads(v) for k, v in r.hgetall(key).items()}
        assert work["t1"] == {"queue": "critical", "payload": JOB, "run_at": int(NOW - 3.7)}
        assert work["t2"]["queue"] == "default" and isinstance(work["t2"]["run_at"], int)
        assert 55 <= r.ttl(key) <= 60
    # A payload that is not valid UTF-8 does not stop the beat
    state.jobs = [("t3", "default", b"\xff{}", NOW)]
    hb.beat(NOW + 1)
    assert json.loads(r.hget(f"{ident}:work", "t3"))["payload"] == "\ufffd{}"
    # When idle again, the next beat leaves no stale entries behind.
    state.jobs = []
    hb.beat(NOW + 5)
    assert not r.exists(f"{ident}:work", f"{ident}:workers")


def test_signals_are_popped_one_per_beat_in_push_order(r: redis.Redis) -> None:
    hb, state = make(r)
    r.lpush(f"{hb.identity}-signals", "TSTP")
    r.lpush(f"{hb.identity}-signals", "TERM")
    assert hb.beat(NOW) == "TSTP"
    assert state.signals == ["TSTP"]
    assert hb.beat(NOW + 5) == "TERM"
    assert hb.beat(NOW + 10) is None
    assert state.signals == ["TSTP", "TERM"]


def test_deregister_leaves_registry_but_hash_expires(r: redis.Redis) -> None:
    hb, state = make(r)
    state.jobs = [("t1", "critical", JOB, NOW)]
    hb.beat(NOW)
    hb.deregister()
    assert r.smembers("processes") == set()
    assert not r.exists(f"{hb.identity}:work", f"{hb.identity}:workers")
    assert r.ttl(hb.identity) > 0


def test_namespace_prefixes_every_key(r: redis.Redis) -> None:
    hb, state = make(r, Keys("ns"))
    state.jobs = [("t1", "critical", JOB, NOW)]
    r.lpush(f"ns:{hb.identity}-signals", "TTIN")
    assert hb.beat(NOW) == "TTIN"
    assert r.smembers("ns:processes") == {hb.identity.encode()}
    assert r.exists(f"ns:{hb.identity}", f"ns:{hb.identity}:work") == 2
    assert not r.exists("processes", hb.identity)


def test_run_beats_until_stopped(r: redis.Redis) -> None:
    hb, _ = make(r)
    stop = threading.Event()
    thread = threading.Thread(target=hb.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not r.exists(hb.identity) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and r.exists(hb.identity)


def test_run_survives_an_unreachable_redis_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    # Given a heartbeat pointed at a port where nothing listens
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2,
                       retry=Retry(NoBackoff(), 0))
    hb = Heartbeat(down, Keys(), "h:1:aaaaaaaaaaaa", {}, State(), interval_s=0.01)
    attempts: list[int] = []
    real_beat = hb.beat
    hb.beat = lambda now_s=None: (attempts.append(1), real_beat(now_s))[1]  # type: ignore[method-assign]
    # When it runs for a while
    with caplog.at_level(logging.ERROR, logger="pyq.heartbeat"):
        stopped = run_loop_for(hb.run, 0.3)
    # Then it kept retrying, logged one error line, and stopped on the event
    assert stopped and len(attempts) >= 3
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and "heartbeat" in errors[0].getMessage()
    down.close()
