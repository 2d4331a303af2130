"""Priorities within a queue on a real Redis: the fetch order, every path that puts a job back, ActiveJob's
priority, a real pool draining 1,000 mixed jobs in order, and a Ruby Sidekiq worker draining a default queue."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import redis

import pyq
from pool import fetch_order, running_pool, wait_until
from pyq import payload, scripts
from pyq.fetch import Fetcher, QueueOrder
from pyq.keys import Keys
from pyq.priority import priority_of
from pyq.scripts import DeadLimits, assemble
from rubyhelp import requires_ruby, sidekiq_server

K = Keys()
IDENTITY = "host:1:abc"


@pyq.job(name="Prio", queue="prio")
def prio(token: str) -> None:
    return None


def fetch_all(r: redis.Redis, queue: str = "prio") -> list[str]:
    """The first argument of every job of ``queue``, in the order fetch.lua hands them out."""
    return [job["args"][0] for job in fetch_order(r, queue, IDENTITY)]


def test_python_and_lua_read_a_payloads_priority_alike(r: redis.Redis) -> None:
    lua = assemble("includes/priority_of") + "\nreturn priority_of(cjson.decode(ARGV[1]))"
    for value in (7, -3, 2.7, -2.5, "5", None, True, 10**9, -(10**9), 0, [1]):
        job = {"class": "X", "args": [], "priority": value}
        assert r.eval(lua, 0, json.dumps(job)) == priority_of(job), value
    assert r.eval(lua, 0, json.dumps({"class": "X"})) == priority_of({"class": "X"}) == 0


def test_higher_priority_runs_first_and_equal_priorities_keep_fifo(client: pyq.Client, r: redis.Redis) -> None:
    # Given jobs of priorities 0, 5, -5 and 10 pushed in a mixed order
    pushed = [("a", 0), ("b", 5), ("c", -5), ("d", 0), ("e", 10), ("f", 5), ("g", -5), ("h", 0)]
    for token, level in pushed:
        prio.set(priority=level).perform_async(token)
    # Then the default-priority ones are a plain Sidekiq list, the others in the priority zset
    assert [json.loads(x)["args"][0] for x in r.lrange("queue:prio", 0, -1)] == ["h", "d", "a"]
    assert r.zcard("pyq:prio:prio") == 5
    # And fetch hands out the highest priority first, FIFO within one priority
    assert fetch_all(r) == ["e", "b", "f", "a", "d", "h", "c", "g"]


def test_a_fetch_of_many_takes_across_the_levels_in_one_call(client: pyq.Client, r: redis.Redis) -> None:
    for token, level in [("lo", -1), ("mid", 0), ("hi", 1)]:
        prio.set(priority=level).perform_async(token)
    units = Fetcher(r, K, IDENTITY, QueueOrder([("prio", 0)])).retrieve_work(10)
    assert [json.loads(u.raw)["args"][0] for u in units] == ["hi", "mid", "lo"]
    assert r.llen(f"pyq:inflight:{IDENTITY}") == 3 and r.exists("pyq:prio:prio", "queue:prio") == 0


def test_bulk_pushes_keep_each_jobs_priority(client: pyq.Client, r: redis.Redis) -> None:
    client.push_bulk({"class": "Prio", "queue": "prio", "args": [["x"], ["y"]], "priority": 3})
    prio.perform_bulk([("z",)])
    client._push_many([{"class": "Prio", "queue": "prio", "args": [t], "priority": p}  # mixed in one call
                       for t, p in [("m1", -2), ("m2", 4), ("m3", 0)]])
    assert fetch_all(r) == ["m2", "x", "y", "z", "m3", "m1"]


def test_a_job_put_back_keeps_its_priority_on_every_path(client: pyq.Client, r: redis.Redis) -> None:
    # Given a high, a default and a low job in flight
    for token, level in [("hi", 5), ("mid", 0), ("lo", -5)]:
        prio.set(priority=level).perform_async(token)
    fetcher = Fetcher(r, K, IDENTITY, QueueOrder([("prio", 0)]))
    units = fetcher.retrieve_work(3)
    # When the process dies and is recovered
    scripts.recover(K, IDENTITY, now_s=time.time(), stale_after_s=0, max_crashes=0, crash_ttl_s=60,
                    dead=DeadLimits(60, 10)).run(r)
    # Then each is back where its priority says, ahead of later jobs of the same priority
    prio.set(priority=5).perform_async("hi-later")
    assert fetch_all(r) == ["hi", "hi-later", "mid", "lo"]
    # And the same holds for a shutdown's put-back (requeue.lua) and a job re-enqueueing itself
    for token, level in [("hi", 5), ("lo", -5)]:
        prio.set(priority=level).perform_async(token)
    units = fetcher.retrieve_work(2)
    assert fetcher.requeue([u for u in units if b'"hi"' in u.raw]) == 1
    low = next(u for u in units if b'"lo"' in u.raw)
    scripts.reenqueue(K, IDENTITY, "prio", raw=low.raw, payload=low.raw.decode()).run(r)
    assert fetch_all(r) == ["hi", "lo"]


def test_scheduled_and_retried_jobs_keep_their_priority_when_promoted(client: pyq.Client, r: redis.Redis) -> None:
    prio.set(priority=2, wait_until=time.time() - 1).perform_async("late")   # due now: pushed at once
    job = {"class": "Prio", "queue": "prio", "args": ["sched"], "jid": "j1", "priority": 7}
    r.zadd("schedule", {json.dumps(job): time.time() - 1})
    r.zadd("retry", {json.dumps({**job, "args": ["retried"], "jid": "j2", "priority": -1}): time.time() - 1})
    prio.perform_async("plain")
    for zset in ("retry", "schedule"):
        scripts.promote(K, zset, now_s=time.time(), limit=10, enqueued_at=time.time()).run(r)
    assert fetch_all(r) == ["sched", "late", "plain", "retried"]


def test_activejob_priority_lower_runs_first_and_a_unique_job_keeps_its_priority(client: pyq.Client,
                                                                               r: redis.Redis) -> None:
    def activejob(token: str, level: int | None) -> dict:
        inner = {"job_class": "Prio", "job_id": token, "queue_name": "prio", "arguments": [token]}
        return {"class": payload.ACTIVEJOB_WRAPPER, "wrapped": "Prio", "queue": "prio",
                "args": [inner if level is None else {**inner, "priority": level}]}

    # ActiveJob: priority 0 runs before 10 (Solid Queue's direction); none is the default
    for token, level in [("aj10", 10), ("aj-none", None), ("aj0", 0), ("aj-5", -5)]:
        client.push(activejob(token, level))
    assert {json.loads(x)["args"][0]["job_id"] for x in r.lrange("queue:prio", 0, -1)} == {"aj-none", "aj0"}
    fetcher = Fetcher(r, K, IDENTITY, QueueOrder([("prio", 0)]))
    order = [json.loads(u.raw)["args"][0]["job_id"] for u in fetcher.retrieve_work(10)]
    assert order == ["aj-5", "aj-none", "aj0", "aj10"]
    # A unique job pushed with a priority goes to the priority zset too
    client.push({"class": "Prio", "queue": "prio", "args": ["u"], "priority": 9, "lock": "until_executed"})
    assert r.zcard("pyq:prio:prio") == 1 and r.llen("queue:prio") == 0


def test_bad_priorities_fail_when_defined_or_set() -> None:
    with pytest.raises(TypeError, match="priority must be an int"):
        pyq.job(name="BadPrio", priority="high")(lambda: None)
    with pytest.raises(TypeError, match="priority must be an int"):
        prio.set(priority=10**6)


# --- real processes ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_1000_jobs_of_mixed_priorities_pushed_into_a_busy_queue_run_in_priority_order(
        tmp_path: Path, r: redis.Redis, redis_url: str, client: pyq.Client) -> None:
    from limiterjobs import blocker, ordered

    rng = random.Random(17)
    levels = [rng.choice([-10, -1, 0, 0, 0, 1, 5, 100]) for _ in range(1000)]
    # Given a pool with one slot and no prefetch, busy with a long job
    with running_pool(tmp_path, redis_url, require=["limiterjobs"], processes=1, concurrency=1, prefetch=0):
        blocker.perform_async(3)
        wait_until(lambda: r.llen("test:blocker") == 1)
        # When 1,000 jobs of mixed priorities are pushed behind it, one by one
        for i, level in enumerate(levels):
            ordered.set(priority=level).perform_async(str(i))
        assert r.llen("test:order") == 0, "the queue was not busy while the jobs were pushed"
        wait_until(lambda: r.llen("test:order") == 1000, timeout=60)
    # Then they ran highest priority first, in push order within one priority
    expected = [str(i) for i in sorted(range(1000), key=lambda i: (-levels[i], i))]
    assert [t.decode() for t in r.lrange("test:order", 0, -1)] == expected


@pytest.mark.slow
@requires_ruby
def test_a_ruby_sidekiq_worker_drains_a_queue_of_default_priority_jobs(redis_url: str, r: redis.Redis) -> None:
    client = pyq.Client(redis_url)
    # Given 50 jobs pushed by pyq at the default priority (named or not), and 2 prioritised ones
    jids = {client.push({"class": "RecordJob", "args": [i], "queue": "interop", **({"priority": 0} if i % 2 else {})})
            for i in range(50)}
    client.push_bulk({"class": "RecordJob", "args": [["high"], ["higher"]], "queue": "interop", "priority": 5})
    with sidekiq_server("record_worker.rb", redis_url, "interop"):
        # Then the Ruby worker runs every default-priority job from the plain list
        wait_until(lambda: r.llen("test:recorded") >= 50, timeout=30)
        wait_until(lambda: r.llen("queue:interop") == 0)
    ran = {json.loads(e)["jid"] for e in r.lrange("test:recorded", 0, -1)}
    assert ran == jids
    # And the prioritised ones wait in pyq's priority zset, which a Ruby worker does not read
    assert r.zcard("pyq:prio:interop") == 2


def test_queue_sizes_and_cancel_see_the_jobs_with_a_priority(client: pyq.Client, r: redis.Redis) -> None:
    from pyq.api import Api

    prio.perform_async("plain")
    wanted = prio.set(priority=3).perform_async("high")
    prio.set(priority=-3).perform_async("low")
    api = Api(r)
    assert api.queue_size("prio") == 3
    assert {q.name: q.size for q in api.overview().queues}["prio"] == 3
    assert pyq.cancel(wanted) == "queued"
    assert fetch_all(r) == ["plain", "low"]


def test_pyq_enqueue_takes_a_priority(client: pyq.Client, r: redis.Redis, redis_url: str) -> None:
    from click.testing import CliRunner

    from pyq.cli import main

    for token, level in [("cli-low", "-1"), ("cli-high", "4")]:
        result = CliRunner().invoke(main, ["enqueue", "Prio", json.dumps([token]), "--priority", level,
                                           "--redis-url", redis_url])
        assert result.exit_code == 0, result.output
    prio.perform_async("plain")
    assert fetch_all(r) == ["cli-high", "plain", "cli-low"]
    bad = CliRunner().invoke(main, ["enqueue", "Prio", "[]", "--priority", "99999", "--redis-url", redis_url])
    assert bad.exit_code == 2
