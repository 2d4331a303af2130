"""Jobs that the worker process tests run in real pyq processes (``-r workerjobs``).

Each job records what it did in the test Redis (``PYQ_REDIS_URL``) so the test
process can count completions across processes and restarts.
"""

from __future__ import annotations

import asyncio
import os
import time

import redis

import pyq

_conn: tuple[int, redis.Redis] | None = None


def conn() -> redis.Redis:
    """The test Redis; a cluster client when the pool runs on a cluster (``PYQ_CLUSTER``)."""
    global _conn
    if _conn is None or _conn[0] != os.getpid():
        url = os.environ["PYQ_REDIS_URL"]
        if os.environ.get("PYQ_CLUSTER", "").lower() in ("1", "true", "yes"):
            from redis.cluster import RedisCluster

            _conn = (os.getpid(), RedisCluster.from_url(url))
        else:
            _conn = (os.getpid(), redis.Redis.from_url(url))
    return _conn[1]


@pyq.job(name="Record")
def record(token: str) -> None:
    conn().rpush("test:done", token)


@pyq.job(name="AsyncRecord")
async def arecord(token: str) -> None:
    conn().rpush("test:done", token)


@pyq.job(name="Sleepy")
def sleepy(token: str, seconds: float) -> None:
    conn().rpush("test:started", token)
    time.sleep(seconds)
    conn().rpush("test:done", token)


@pyq.job(name="Slowish")
def slowish(token: str) -> None:
    time.sleep(0.002)
    conn().rpush("test:done", token)


@pyq.job(name="GreetJob")
def greet(name: str, options: dict, greeting: str, count: int = 1) -> None:
    """Registered under the Ruby ActiveJob class name, so Ruby's ``GreetJob.perform_later`` runs here."""
    import json

    conn().rpush("test:done", json.dumps([name, options, greeting, count], sort_keys=True))


@pyq.job(name="Interop::NoRetry", retry=0)
def no_retry(token: str) -> None:
    """Declares ``retry: 0``: a Ruby push with ``retry: nil`` dies at its first failure."""
    raise RuntimeError(f"no retry {token}")


@pyq.job(name="Interop::NeverRetry", retry=False)
def never_retry(token: str) -> None:
    """Declares ``retry: false``: a failure is dropped (death handlers only)."""
    raise RuntimeError(f"never retry {token}")


@pyq.job(name="Interop::Failing")
def failing(token: str) -> None:
    """Declares nothing: Sidekiq's default ``retry: true`` applies."""
    raise RuntimeError(f"failing {token}")


@pyq.job(name="AlwaysFails")
def always_fails(token: str) -> None:
    """Raises every time, so that tests can watch the retry bookkeeping."""
    conn().rpush("test:failed", token)
    raise ValueError(f"failing on purpose: {token}")


@pyq.job(name="CountRunning")
async def count_running(seconds: float) -> None:
    """Records how many jobs run at once (test:peak holds each start's count)."""
    now = conn().incr("test:running")
    conn().rpush("test:peak", now)
    await asyncio.sleep(seconds)
    conn().decr("test:running")


@pyq.job(name="CountRunningSync")
def count_running_sync(seconds: float) -> None:
    now = conn().incr("test:running")
    conn().rpush("test:peak", now)
    time.sleep(seconds)
    conn().decr("test:running")


@pyq.job(name="StartDelay")
def start_delay(pushed_at: float, seconds: float) -> None:
    """Records how long after its push it started (test:delay), then runs ``seconds``."""
    conn().rpush("test:delay", time.time() - pushed_at)
    time.sleep(seconds)
