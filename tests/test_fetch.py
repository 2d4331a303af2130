"""Queue order, and the fetch / ack / requeue scripts against a real Redis."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pyq import payload
from pyq.fetch import Acker, Fetcher, QueueOrder
from pyq.keys import Keys, utc_day
from pyq.scripts import WAKE_CAP, Scripts, assemble, header_slots

KEYS = Keys()


def push_ruby_style(r, queue: str, n: int, start: int = 0) -> list[bytes]:
    """Jobs the way a Ruby client pushes them: plain LPUSH, no wake marker."""
    raws = [payload.dumps({"class": "Record", "args": [i], "queue": queue, "jid": payload.new_jid(),
                           "created_at": 1.0, "enqueued_at": 1.0}).encode() for i in range(start, start + n)]
    r.sadd("queues", queue)
    r.lpush(f"queue:{queue}", *raws)
    return raws


def test_strict_order_is_declared_order_without_duplicates():
    order = QueueOrder([("critical", 0), ("default", 0), ("critical", 0), ("low", 0)])
    assert order.mode == "strict"
    assert order() == ["critical", "default", "low"] == order()


def test_equal_weights_give_a_fresh_random_permutation():
    order = QueueOrder([("a", 1), ("b", 1), ("c", 1)], rng=random.Random(7))
    seen = {tuple(order()) for _ in range(200)}
    assert order.mode == "random" and len(seen) == 6


def test_weighted_order_puts_each_queue_first_in_proportion_to_its_weight():
    # Given weights 6:3:1, When 10,000 orders are drawn, Then each queue leads ~weight/sum of the time
    order = QueueOrder([("critical", 6), ("default", 3), ("low", 1)], rng=random.Random(1))
    firsts = Counter(order()[0] for _ in range(10_000))
    assert order.mode == "weighted"
    for name, share in (("critical", 0.6), ("default", 0.3), ("low", 0.1)):
        assert abs(firsts[name] / 10_000 - share) < 0.02, firsts
    assert sorted(order()) == ["critical", "default", "low"]


def test_weighted_fetches_over_10000_jobs_follow_the_weights(r):
    # the same through the real fetch script: one job per fetch from two always-full queues
    push_ruby_style(r, "high", 10_000)
    push_ruby_style(r, "low", 10_000)
    fetcher = Fetcher(r, KEYS, "host:1:abc", QueueOrder([("high", 3), ("low", 1)], rng=random.Random(3)))
    got = Counter(fetcher.retrieve_work(1)[0].queue for _ in range(10_000))
    assert abs(got["high"] / 10_000 - 0.75) < 0.02, got


def test_fetch_moves_oldest_jobs_into_the_inflight_list_atomically(r):
    raws = push_ruby_style(r, "default", 5)
    fetcher = Fetcher(r, KEYS, "host:1:abc", QueueOrder([("default", 0)]))
    units = fetcher.retrieve_work(3)
    assert [u.raw for u in units] == raws[:3]  # LPUSHed first = oldest = taken first
    assert {u.queue for u in units} == {"default"}
    assert r.llen("queue:default") == 2
    assert sorted(r.lrange(KEYS.inflight("host:1:abc"), 0, -1)) == sorted(raws[:3])
    assert r.smembers(KEYS.inflight_owners) == {b"host:1:abc"}


def test_fetch_spills_over_to_the_next_queue_and_returns_empty_when_all_are_empty(r):
    push_ruby_style(r, "a", 2)
    push_ruby_style(r, "b", 5, start=10)
    fetcher = Fetcher(r, KEYS, "h:1:x", QueueOrder([("a", 0), ("b", 0)]))
    assert [u.queue for u in fetcher.retrieve_work(4)] == ["a", "a", "b", "b"]
    assert len(fetcher.retrieve_work(10)) == 3
    assert fetcher.retrieve_work(10) == []


def test_ack_removes_from_inflight_and_counts_processed_per_day(r):
    push_ruby_style(r, "default", 4)
    fetcher = Fetcher(r, KEYS, "h:1:x", QueueOrder([("default", 0)]))
    units = fetcher.retrieve_work(4)
    acker = Acker(r, KEYS, "h:1:x")
    for unit in units[:3]:
        acker.acknowledge(unit.raw)
    assert acker.flush() == 3
    assert r.lrange(KEYS.inflight("h:1:x"), 0, -1) == [units[3].raw]
    assert r.get("stat:processed") == b"3"
    assert r.get(f"stat:processed:{utc_day()}") == b"3"
    assert 0 < r.ttl(f"stat:processed:{utc_day()}") <= 157_680_000


def test_requeue_puts_jobs_back_at_the_front_only_if_still_in_flight(r):
    raws = push_ruby_style(r, "default", 3)
    fetcher = Fetcher(r, KEYS, "h:1:x", QueueOrder([("default", 0)]))
    units = fetcher.retrieve_work(2)
    r.lrem(KEYS.inflight("h:1:x"), 1, units[1].raw)  # finished (or recovered) meanwhile
    assert fetcher.requeue(units) == 1
    assert r.lindex("queue:default", -1) == raws[0]  # taken next
    assert r.llen("queue:default") == 2 and r.llen(KEYS.inflight("h:1:x")) == 0
    assert r.llen(KEYS.wake("default")) >= 1


def test_requeue_leaves_at_most_wake_cap_markers(r):
    push_ruby_style(r, "default", WAKE_CAP + 4)
    fetcher = Fetcher(r, KEYS, "h:1:x", QueueOrder([("default", 0)]))
    assert fetcher.requeue(fetcher.retrieve_work(WAKE_CAP + 4)) == WAKE_CAP + 4
    assert r.llen(KEYS.wake("default")) == WAKE_CAP


def test_namespace_prefixes_every_key(r):
    keys = Keys("app")
    r.lpush("app:queue:default", b'{"class":"X","args":[]}')
    fetcher = Fetcher(r, keys, "h:1:x", QueueOrder([("default", 0)]))
    assert len(fetcher.retrieve_work(5)) == 1
    assert r.llen("app:pyq:inflight:h:1:x") == 1


def test_wait_for_work_wakes_on_a_pyq_enqueue(r, client):
    fetcher = Fetcher(r, KEYS, "h:1:x", QueueOrder([("default", 0)]))
    assert fetcher.wait_for_work(0.05) is False
    client.push({"class": "Record", "args": [1]})
    assert fetcher.wait_for_work(1.0) is True


@pytest.mark.parametrize("name", ["fetch", "ack", "fail", "requeue"])
def test_runtime_scripts_document_their_keys_and_argv(name, r):
    slots = header_slots(assemble(name))
    assert slots["KEYS"] and slots["ARGV"]
    assert Scripts(r).run  # loadable by SHA below
    r.script_load(assemble(name))
