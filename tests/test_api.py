"""api.py: the admin view of queues, sorted sets and counters, over jobs written by pyq and by hand."""

from __future__ import annotations

import time

import pytest
import redis

from pyq.api import Api
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
