"""The benchmark's job bodies, for pyq workers and the bare BRPOP loop.

Every job takes one integer ``x``. Below :data:`LAT_THRESHOLD` it is a W1
no-op: one INCR of :data:`COUNTER_KEY` on the counter Redis (a second server,
so the job's own round trip costs every system the same). At or above, ``x``
is the enqueue wall-clock time in microseconds: the job pushes its latency to
:data:`LAT_KEY` and INCRs the counter in one pipelined round trip.

The counter client is one ``redis.Redis`` per process (its pool hands each
thread a connection), made lazily so that forked workers never share a socket.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis
import redis.asyncio as aredis

import pyq

COUNTER_URL = os.environ.get("BENCH_COUNTER_URL", "redis://127.0.0.1:6391/0")
#: The worker's ``concurrency`` (the bench sets it), which the async counter pool is sized to.
CONCURRENCY = int(os.environ.get("BENCH_THREADS", "10"))
COUNTER_KEY = "bench:done"
LAT_KEY = "bench:lat"
READY_KEY = "bench:ready"
#: Arguments at or above this are enqueue times in epoch microseconds (2001-09-09).
LAT_THRESHOLD = 10**15
#: What a W3 job waits for (a remote call), in seconds.
IO_WAIT_S = 0.05

_sync: dict[str, Any] = {"pid": None, "client": None}
_async: dict[str, Any] = {"key": None, "client": None}


def now_us() -> int:
    return time.time_ns() // 1000


def counter() -> redis.Redis:
    """This process's counter client (made again after a fork)."""
    if _sync["pid"] != os.getpid():
        _sync["client"], _sync["pid"] = redis.Redis.from_url(COUNTER_URL), os.getpid()
    return _sync["client"]


def record(x: int) -> None:
    """The sync job body shared by pyq and the bare loop."""
    if x >= LAT_THRESHOLD:
        lat = now_us() - x
        pipe = counter().pipeline(transaction=False)
        pipe.rpush(LAT_KEY, lat).incr(COUNTER_KEY)
        pipe.execute()
    else:
        counter().incr(COUNTER_KEY)


def _async_counter() -> aredis.Redis:
    key = (os.getpid(), id(asyncio.get_running_loop()))
    if _async["key"] != key:
        # one connection per slot, as users size their pools: pyq never runs more jobs than that at once
        _async["client"], _async["key"] = aredis.Redis.from_url(COUNTER_URL, max_connections=CONCURRENCY), key
    return _async["client"]


async def arecord(x: int) -> None:
    """The async job body: the same work through ``redis.asyncio``."""
    if x >= LAT_THRESHOLD:
        lat = now_us() - x
        pipe = _async_counter().pipeline(transaction=False)
        pipe.rpush(LAT_KEY, lat).incr(COUNTER_KEY)
        await pipe.execute()
    else:
        await _async_counter().incr(COUNTER_KEY)


@pyq.job(name="BenchJob")
def bench_job(x: int) -> None:
    record(x)


@pyq.job(name="BenchAsyncJob")
async def bench_async_job(x: int) -> None:
    await arecord(x)


@pyq.job(name="NoopJob")
def noop_job(x: int) -> None:
    """W0: no body at all, so what a job costs is the machinery's alone."""


@pyq.job(name="BenchIoJob")
async def bench_io_job(x: int) -> None:
    """W3: an I/O-bound job, 50 ms of waiting, then the counter."""
    await asyncio.sleep(IO_WAIT_S)
    await arecord(x)


@pyq.job(name="BenchSleepJob")
async def bench_sleep_job(x: int) -> None:
    """W3 without its counter call: what pyq itself spends on an async job."""
    await asyncio.sleep(IO_WAIT_S)


#: Mixed durations: long jobs count themselves in here, then block until the run lets them go.
LONG_STARTED_KEY, RELEASE_KEY = "bench:long", "bench:release"
#: Each short job's "start_us,end_us" (wall clock, microseconds).
MIXED_KEY = "bench:mixed"


@pyq.job(name="MixedLongJob")
def mixed_long_job(x: int) -> None:
    """Holds its slot until the run pushes a release token (a job of minutes, as far as the run can tell)."""
    counter().incr(LONG_STARTED_KEY)
    counter().blpop([RELEASE_KEY], timeout=300)


@pyq.job(name="MixedShortJob")
def mixed_short_job(x: int) -> None:
    """Records when it started and ended, so the run can tell how long each waited for the free slot."""
    start_us = now_us()
    counter().rpush(MIXED_KEY, f"{start_us},{now_us()}")


@pyq.job(name="HoldAsyncJob")
async def hold_async_job(ms: int) -> None:
    """Memory per in-flight async job: waits ``ms`` milliseconds and does nothing else."""
    await asyncio.sleep(ms / 1000)


@pyq.job(name="BenchResultJob", result_ttl=600)
def bench_result_job(x: int) -> int:
    """W1 with a stored result: what keeping a return value costs a job."""
    record(x)
    return x


# --- limits.py: the same body under each limiter, sized never to be full (the cost of the check alone) ---
_LIMITS = {
    "concurrent": pyq.limiter.concurrent("bench-concurrent", 10_000),
    "window": pyq.limiter.window("bench-window", 10**9, 1),
    "bucket": pyq.limiter.bucket("bench-bucket", 10**9, 60),
    "leaky": pyq.limiter.leaky("bench-leaky", 10**9, 1),
}


@pyq.job(name="BenchConcurrentJob", limits=[_LIMITS["concurrent"]])
def concurrent_limited(x: int) -> None:
    counter().incr(COUNTER_KEY)


@pyq.job(name="BenchWindowJob", limits=[_LIMITS["window"]])
def window_limited(x: int) -> None:
    counter().incr(COUNTER_KEY)


@pyq.job(name="BenchBucketJob", limits=[_LIMITS["bucket"]])
def bucket_limited(x: int) -> None:
    counter().incr(COUNTER_KEY)


@pyq.job(name="BenchLeakyJob", limits=[_LIMITS["leaky"]])
def leaky_limited(x: int) -> None:
    counter().incr(COUNTER_KEY)
