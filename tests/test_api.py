"""pyq.api: the admin view of queues, sorted sets, counters and processes, over jobs written by pyq and by hand."""

from __future__ import annotations

import json
import time

import pytest
import redis

from pyq.api import Api, Work
from pyq.client import Client
from pyq.keys import Keys
from pyq.payload import dumps


def test_queue_names_sizes_and_jobs_oldest_first(client: Client, r: redis.Redis) -> None:
    jids = [client.push({"class": "X", "args": [i], "queue": "a"}) for i in range(3)]
    client.push({"class": "X", "args": [], "queue": "b"})
    api = Api(r)
    assert api.queue_names() == ["a", "b"]
    assert (api.queue_size("a"), api.queue_size("b"), api.queue_size("none")) == (3, 1, 0)
    assert [job["jid"] for job in api.queue_jobs("a")] == jids
    assert [job["args"] for job in api.queue_jobs("a", 0, 1)] == [[1], [2]]


def test_queue_jobs_keeps_unreadable_entries_visible(r: redis.Redis) -> None:
    r.lpush("queue:a", b"garbage{")
    assert Api(r).queue_jobs("a") == [{"raw": b"garbage{"}]


@pytest.mark.parametrize(("field", "value"), [
    ("enqueued_at", 1755400000.0), ("enqueued_at", 1755400000000), ("created_at", 1755400000.0)])
def test_queue_latency_reads_either_time_style(r: redis.Redis, field: str, value: float) -> None:
    r.lpush("queue:a", dumps({"class": "X", "args": [], field: value}))
    r.lpush("queue:a", dumps({"class": "X", "args": [], "enqueued_at": 1755400009.0}))  # newer, not the oldest
    assert Api(r).queue_latency("a", now_s=1755400010.0) == pytest.approx(10.0)


@pytest.mark.parametrize("oldest", [None, b"garbage", dumps({"class": "X", "args": []}).encode()])
def test_queue_latency_is_zero_without_a_readable_time(r: redis.Redis, oldest: bytes | None) -> None:
    if oldest:
        r.lpush("queue:a", oldest)
    assert Api(r).queue_latency("a", now_s=1010.0) == 0.0


def test_queue_latency_is_never_negative(r: redis.Redis) -> None:
    r.lpush("queue:a", dumps({"class": "X", "args": [], "enqueued_at": time.time() + 100}))
    assert Api(r).queue_latency("a") == 0.0


def test_sorted_sets_sizes_entries_and_find(client: Client, r: redis.Redis) -> None:
    later = client.push({"class": "X", "args": [2], "at": time.time() + 200})
    sooner = client.push({"class": "X", "args": [1], "at": time.time() + 100})
    r.zadd("dead", {b"not json": 5.0})
    api = Api(r)
    assert (api.set_size("schedule"), api.set_size("retry"), api.set_size("dead")) == (2, 0, 1)
    entries = api.set_entries("schedule")
    assert [e.jid for e in entries] == [sooner, later] and entries[0].score < entries[1].score
    assert entries[0].job["args"] == [1] and entries[0].raw.startswith(b"{")
    assert api.find_in_set("schedule", later).job["args"] == [2]
    assert api.find_in_set("schedule", "missing") is None
    [dead] = api.set_entries("dead")
    assert (dead.job, dead.jid, dead.raw, dead.score) == (None, None, b"not json", 5.0)


def test_unknown_set_name_is_refused(r: redis.Redis) -> None:
    with pytest.raises(ValueError, match="unknown sorted set 'queue'"):
        Api(r).set_size("queue")


def test_stat_counters(r: redis.Redis) -> None:
    r.set("stat:processed", 12)
    api = Api(r)
    assert (api.stat("processed"), api.stat("failed")) == (12, 0)


def test_namespace(redis_url: str, r: redis.Redis) -> None:
    Client(redis_url, namespace="ns").push({"class": "X", "args": [], "queue": "q", "at": time.time() + 60})
    Client(redis_url, namespace="ns").push({"class": "X", "args": [], "queue": "q"})
    api, plain = Api(r, Keys("ns")), Api(r)
    assert (api.queue_names(), api.queue_size("q"), api.set_size("schedule")) == (["q"], 1, 1)
    assert (plain.queue_names(), plain.queue_size("q"), plain.set_size("schedule")) == ([], 0, 0)


def register_busy_process(r: redis.Redis, identity: str, prefix: str = "") -> None:
    """A live process with one running job, written the way Sidekiq 7 writes them."""
    r.sadd(f"{prefix}processes", identity)
    r.hset(f"{prefix}{identity}", mapping={"info": json.dumps({"hostname": "h", "pid": 7, "concurrency": 5}),
                                           "busy": 1, "beat": 1755400000.0, "quiet": "false"})
    work = {"queue": "mail", "run_at": 1755400001, "payload": json.dumps({"class": "Wrapper", "wrapped": "MailJob"})}
    r.hset(f"{prefix}{identity}:work", "tid-1", json.dumps(work))


def test_processes_and_their_work_through_the_one_front_door(r: redis.Redis) -> None:
    # Given a busy process in namespace ns (and one outside it)
    register_busy_process(r, "h:7:abc", "ns:")
    register_busy_process(r, "h:8:def")
    api = Api(r, Keys("ns"))
    # Then the process, its work, and the overview come from the same Api
    assert [(p.identity, p.busy, p.concurrency) for p in api.processes()] == [("h:7:abc", 1, 5)]
    assert api.process_work("h:7:abc") == [
        Work("tid-1", "mail", {"class": "Wrapper", "wrapped": "MailJob"}, 1755400001)]
    assert api.process_work("h:9:none") == []
    assert (api.overview().busy, len(api.overview().processes)) == (1, 1)


def test_process_signal_goes_to_the_process_signal_list(r: redis.Redis) -> None:
    register_busy_process(r, "h:7:abc")
    assert Api(r).process_signal("h:7:abc", "quiet") == "TSTP"
    assert r.lrange("h:7:abc-signals", 0, -1) == [b"TSTP"]
    with pytest.raises(LookupError):
        Api(r).process_signal("h:9:none", "stop")
