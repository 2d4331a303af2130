"""One concurrency budget for sync and async jobs, and no job waiting behind a running one while a
slot is free anywhere in the pool. Real pools, real Redis."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from pool import running_pool, wait_until
from pyq import Client


def peak(r: redis.Redis) -> int:
    return max(int(n) for n in r.lrange("test:peak", 0, -1))


@pytest.mark.parametrize("prefetch", [0, 8])
def test_async_jobs_never_run_more_than_concurrency_at_once(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                             client: Client, prefetch: int) -> None:
    # Given a process with 4 slots (and possibly 8 prefetched jobs waiting)
    with running_pool(tmp_path, redis_url, processes=1, concurrency=4, prefetch=prefetch):
        # When 16 async jobs that each take 0.3 s arrive at once
        client.push_bulk({"class": "CountRunning", "args": [[0.3]] * 16})
        wait_until(lambda: r.llen("test:peak") == 16 and int(r.get("test:running") or 0) == 0, timeout=20)
    # Then at most 4 ran at once, and the 4 were used
    assert peak(r) == 4


def test_sync_and_async_jobs_share_one_budget(tmp_path: Path, redis_url: str, r: redis.Redis,
                                              client: Client) -> None:
    with running_pool(tmp_path, redis_url, processes=1, concurrency=3, prefetch=6):
        for _ in range(6):
            client.push_bulk({"class": "CountRunning", "args": [[0.3]]})
            client.push_bulk({"class": "CountRunningSync", "args": [[0.3]]})
        wait_until(lambda: r.llen("test:peak") == 12 and int(r.get("test:running") or 0) == 0, timeout=20)
    assert peak(r) == 3


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_short_jobs_start_at_once_while_long_ones_hold_all_but_one_slot(tmp_path: Path, redis_url: str,
                                                                       r: redis.Redis, client: Client,
                                                                       processes: int) -> None:
    # Given a pool of 2 slots per process, all ready
    with running_pool(tmp_path, redis_url, processes=processes, concurrency=2):
        wait_until(lambda: r.scard("processes") == processes, timeout=20)
        time.sleep(0.5)  # every fetcher now blocks on the empty queue
        # When a long job per slot except one arrives, then short jobs right behind them
        slots = 2 * processes
        client.push_bulk({"class": "StartDelay", "args": [[time.time(), 5.0]] * (slots - 1)})
        for _ in range(20):
            client.push({"class": "StartDelay", "args": [time.time(), 0.0]})
        wait_until(lambda: r.llen("test:delay") == slots - 1 + 20, timeout=4)
    # Then every job started soon after its push, none waited for a long one to finish
    delays = sorted(float(d) for d in r.lrange("test:delay", 0, -1))
    assert delays[-1] < 1.0, delays


def test_an_async_pool_keeps_no_idle_executor_thread_per_slot(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                             client: Client) -> None:
    # Given a process with 500 slots running only async jobs
    with running_pool(tmp_path, redis_url, processes=1, concurrency=500):
        wait_until(lambda: r.scard("processes") == 1, timeout=20)
        client.push_bulk({"class": "CountRunning", "args": [[0.2]] * 300})
        wait_until(lambda: r.llen("test:peak") == 300 and int(r.get("test:running") or 0) == 0, timeout=20)
        [identity] = r.smembers("processes")
        pid = int(identity.decode().split(":")[1])
        threads = len(os.listdir(f"/proc/{pid}/task"))
    # Then they ran side by side, and the worker has a handful of threads, not one per slot
    assert peak(r) > 100
    assert threads < 30, threads
