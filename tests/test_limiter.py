"""Limiters on a real Redis: each script's decision at explicit times, the context managers, and jobs over a
limit rescheduled (not failed) by a real worker."""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner

import pyq
import pyq.testing
from pool import running_worker, wait_until
from pyq import scripts
from pyq.api import Api
from pyq.cli import main
from pyq.keys import Keys
from pyq.limiter import OverLimit

K = Keys()
T = 1_800_000_000.0


def take(call: scripts.Call, r: redis.Redis) -> tuple[int, int]:
    taken, wait_ms = call.run(r)
    return int(taken), int(wait_ms)


# --- each script, at explicit times ------------------------------------------------------------------------------


def test_concurrent_lease_is_held_until_released_or_lapsed(r: redis.Redis) -> None:
    def acquire(token: str, now_s: float) -> tuple[int, int]:
        return take(scripts.limit_concurrent(K, "gw", descriptor="{}", limit=2, now_s=now_s, lock_timeout_s=30,
                                             token=token), r)

    # Given two leases of a limit of 2
    assert acquire("a", T) == (1, 0) and acquire("b", T + 1) == (1, 0)
    # Then a third waits until the first lapses (29 s from now)
    assert acquire("c", T + 1) == (0, 29_000)
    # When "b" gives its lease back, "c" gets one
    assert scripts.limit_release(K, "gw", token="b").run(r) == 1
    assert acquire("c", T + 2) == (1, 0)
    # And a holder that never releases (a killed process) loses its lease when it lapses, not before
    assert acquire("d", T + 29.9)[0] == 0
    assert acquire("d", T + 30) == (1, 0)
    assert r.zscore("pyq:lmtr-c-gw", "a") is None
    assert scripts.limit_release(K, "gw", token="a").run(r) == 0  # a lapsed lease is not given back twice


def test_window_counts_a_sliding_window(r: redis.Redis) -> None:
    def send(i: int, now_s: float) -> tuple[int, int]:
        return take(scripts.limit_window(K, "mail", descriptor="{}", count=3, seconds=60, now_s=now_s,
                                         token=str(i)), r)

    assert [send(i, T + i) for i in range(3)] == [(1, 0)] * 3
    assert send(3, T + 30) == (0, 30_000)    # full until the first leaves the window
    assert send(4, T + 60) == (1, 0)          # it has: one more fits
    assert send(5, T + 60.5) == (0, 500)      # the second leaves at T + 61
    assert r.zcard("pyq:lmtr-w-mail") == 3


def test_bucket_refills_at_each_interval(r: redis.Redis) -> None:
    def call(now_s: float) -> tuple[int, int]:
        return take(scripts.limit_bucket(K, "api", descriptor="{}", count=2, seconds=10, now_s=now_s), r)

    start = 10 * (T // 10)
    assert call(start + 1) == (1, 0) and call(start + 2) == (1, 0)
    assert call(start + 3) == (0, 7000)       # empty until the next interval
    assert call(start + 10) == (1, 0)         # a new interval starts full, however busy the last one was


def test_leaky_bucket_spreads_operations_after_a_burst(r: redis.Redis) -> None:
    def call(now_s: float) -> tuple[int, int]:
        return take(scripts.limit_leaky(K, "smooth", descriptor="{}", count=2, seconds=10, now_s=now_s), r)

    assert call(T) == (1, 0) and call(T) == (1, 0)   # a burst of the bucket's size
    assert call(T) == (0, 5000)                     # then one per seconds / count
    assert call(T + 4.9)[0] == 0
    assert call(T + 5) == (1, 0)


# --- the Python side -------------------------------------------------------------------------------------------


def test_context_manager_raises_over_limit_outside_a_job_and_registers_the_limiter(client: pyq.Client,
                                                                                   r: redis.Redis) -> None:
    solo = pyq.limiter.concurrent("solo", 1, wait_timeout=0)
    with solo as lease:
        assert r.zscore("pyq:lmtr-c-solo", lease.token) is not None
        with pytest.raises(OverLimit) as caught, solo:
            pass
        assert caught.value.limiter == "solo" and 0 < caught.value.wait_s <= 30
    assert r.zcard("pyq:lmtr-c-solo") == 0  # given back on leaving the block
    with solo:  # and free again
        pass
    assert json.loads(r.hget("pyq:limiters", "solo")) == {"kind": "concurrent", "limit": 1, "lock_timeout": 30.0}


def test_a_waiting_acquire_gets_the_lease_when_it_is_released(client: pyq.Client) -> None:
    gate = pyq.limiter.concurrent("gate", 1, wait_timeout=5)
    token = gate.acquire()
    started = time.monotonic()
    import threading

    threading.Timer(0.3, gate.release, (token,)).start()
    with gate:
        waited = time.monotonic() - started
    assert 0.25 < waited < 2


def test_bad_limiters_and_options_fail_when_defined() -> None:
    with pytest.raises(ValueError, match="limit must be an int"):
        pyq.limiter.concurrent("x", 0)
    with pytest.raises(ValueError, match="seconds must be"):
        pyq.limiter.window("x", 5, 0)
    with pytest.raises(TypeError, match="limits must be a list"):
        pyq.job(name="BadLimits", limits=["stripe"])(lambda: None)
    with pytest.raises(TypeError, match="limits_concurrency"):
        pyq.job(name="BadConcurrency", limits_concurrency=(0, lambda: "k"))(lambda: None)


# --- jobs over a limit, in a real worker ------------------------------------------------------------------------

HELD = pyq.limiter.concurrent("held", 1, wait_timeout=0, backoff=lambda overrated, wait_s: 0.2)
ONCE = pyq.limiter.concurrent("once", 1, wait_timeout=0, reschedule=1, backoff=lambda overrated, wait_s: 0.2)


@pyq.job(name="LimitedRecord", limits=[HELD])
def limited_record(token: str) -> None:
    pyq.current().redis.rpush("test:done", token)


@pyq.job(name="InsideRecord", retry=3)
def inside_record(token: str) -> None:
    with ONCE:
        pyq.current().redis.rpush("test:done", token)


def test_a_job_over_its_limit_is_rescheduled_not_failed_and_runs_once_there_is_room(client: pyq.Client,
                                                                                    r: redis.Redis,
                                                                                    redis_url: str) -> None:
    # Given the limiter's only lease held elsewhere
    token = HELD.acquire()
    with running_worker(redis_url):
        # When a job limited by it is pushed
        limited_record.perform_async("a")
        # Then it goes to the schedule set, with its overrated count, and is neither failed nor retried
        wait_until(lambda: r.zcard("schedule") == 1 and int(r.get("pyq:stat:over_limit") or 0) >= 1)
        job = json.loads(r.zrange("schedule", 0, 0)[0])
        assert job["overrated"] >= 1 and "retry_count" not in job and "error_class" not in job
        assert r.zcard("retry") == 0 and r.get("stat:failed") is None
        assert int(r.hget("pyq:limiters:over", "held")) >= 1
        # When the lease is given back, the job runs at its next promotion
        HELD.release(token)
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"a"])
    assert r.zcard("schedule") == 0 and r.get("stat:failed") is None and r.zcard("retry") == 0


def test_after_its_reschedules_a_job_over_the_limit_is_an_ordinary_failure(client: pyq.Client, r: redis.Redis,
                                                                            redis_url: str) -> None:
    token = ONCE.acquire()
    with running_worker(redis_url):
        inside_record.perform_async("b")
        wait_until(lambda: r.zcard("retry") == 1, timeout=20)  # rescheduled once, then over the limit again
    failed = json.loads(r.zrange("retry", 0, 0)[0])
    assert failed["error_class"] == "pyq.limiter.OverLimit"
    assert failed["overrated"] == 1 and failed["retry_count"] == 0
    assert r.get("stat:failed") == b"1" and r.get("pyq:stat:over_limit") == b"1"
    ONCE.release(token)


def test_limits_concurrency_runs_one_job_per_key_at_once(client: pyq.Client, r: redis.Redis, redis_url: str) -> None:
    from limiterjobs import sync

    # Given 8 syncs of 2 accounts and 4 slots
    for i in range(8):
        sync.perform_async(i % 2, 0.2)
    with running_worker(redis_url, concurrency=4):
        wait_until(lambda: r.llen("test:done") == 8, timeout=30)
    # Then no account ever had two syncs at once, and the ones over the limit were rescheduled, not failed
    assert {int(n) for n in r.lrange("test:sync_peaks", 0, -1)} == {1}
    assert sorted(r.lrange("test:done", 0, -1)) == [b"0"] * 4 + [b"1"] * 4
    assert r.get("stat:failed") is None and int(r.get("pyq:stat:over_limit") or 0) > 0
    assert {use.name for use in Api(r).limiters()} == {"Sync:account-0", "Sync:account-1"}


def test_pyq_limits_lists_each_limiter_with_its_use(client: pyq.Client, r: redis.Redis, redis_url: str) -> None:
    gw = pyq.limiter.concurrent("gw", 4)
    mail = pyq.limiter.window("mail", 100, 60)
    held = [gw.acquire() for _ in range(3)]
    for _ in range(7):
        with mail:
            pass
    r.hset("pyq:limiters:over", "mail", 5)
    result = CliRunner().invoke(main, ["limits", "--redis-url", redis_url, "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["limiters"]}
    assert rows["gw"]["used"] == 3 and rows["gw"]["limit"] == 4 and rows["gw"]["kind"] == "concurrent"
    assert rows["mail"]["used"] == 7 and rows["mail"]["seconds"] == 60 and rows["mail"]["over_limit"] == 5
    text = CliRunner().invoke(main, ["limits", "--redis-url", redis_url]).output
    assert "3/4 at once" in text and "7/100 per 60s" in text
    for token in held:
        gw.release(token)


LOCAL = pyq.limiter.window("local", 1, 60, wait_timeout=0)


@pyq.job(name="LimitedInside", limits=[pyq.limiter.concurrent("opt", 1)])
def limited_inside(token: str) -> str:
    with LOCAL:
        return token


def test_limiters_have_room_in_the_test_modes() -> None:
    # pyq.testing keeps nothing in Redis: limits are granted there, as uniqueness locks are
    with pyq.testing.inline():
        limited_inside.perform_async("x")
        limited_inside.perform_async("y")
    with pyq.testing.fake() as jobs:
        limited_inside.perform_async("z")
        jobs.drain()


ASYNC_HELD = pyq.limiter.concurrent("async-held", 1, wait_timeout=0.3, backoff=lambda overrated, wait_s: 0.2)
ASYNC_RATE = pyq.limiter.bucket("async-rate", 100, 60)


@pyq.job(name="AsyncLimited", limits=[ASYNC_HELD])
async def async_limited(token: str) -> None:
    async with ASYNC_RATE:
        pyq.current().redis.rpush("test:done", token)


def test_an_async_job_waits_on_the_loop_and_is_rescheduled_over_its_limit(client: pyq.Client, r: redis.Redis,
                                                                         redis_url: str) -> None:
    token = ASYNC_HELD.acquire()
    with running_worker(redis_url):
        async_limited.perform_async("a")
        wait_until(lambda: r.hget("pyq:limiters:over", "async-held") is not None)
        assert r.llen("test:done") == 0 and r.get("stat:failed") is None
        ASYNC_HELD.release(token)
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"a"])
    assert Api(r).limiters()[0].name == "async-held"
    assert {use.name: use.used for use in Api(r).limiters()}["async-rate"] == 1
