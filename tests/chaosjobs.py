"""Jobs for the chaos harness and the fault tests, run in real pyq processes (``-r chaosjobs``).

Every run is counted in a separate Redis (``CHAOS_RESULTS_URL``) with HINCRBY, so a job
that ran twice shows a count of 2 and a lost job shows no field at all; the queue Redis
can be restarted or filled without touching the tally.
"""

from __future__ import annotations

import os
import signal
import time

import redis

import pyq

#: Hash of token -> number of completed runs, in the results Redis.
RESULTS_KEY = "chaos:done"
#: List of tokens whose run started, in the results Redis.
STARTED_KEY = "chaos:started"

_conn: tuple[int, redis.Redis] | None = None


def results() -> redis.Redis:
    """One connection per process (a forked child must not reuse its parent's socket)."""
    global _conn
    if _conn is None or _conn[0] != os.getpid():
        _conn = (os.getpid(), redis.Redis.from_url(os.environ["CHAOS_RESULTS_URL"]))
    return _conn[1]


@pyq.job(name="ChaosToken")
def token(name: str, sleep_ms: float = 0) -> None:
    """Work for ``sleep_ms``, then count one completed run of ``name``."""
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    results().hincrby(RESULTS_KEY, name, 1)


@pyq.job(name="ChaosExit", retry=False)
def hard_exit(name: str) -> None:
    """Ends the worker process without any cleanup, as a C extension calling exit() would."""
    results().rpush(STARTED_KEY, name)
    os._exit(1)


@pyq.job(name="ChaosSegfault", retry=False)
def segfault(name: str) -> None:
    """Dies of SIGSEGV, as a crashing C extension would."""
    results().rpush(STARTED_KEY, name)
    os.kill(os.getpid(), signal.SIGSEGV)


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception raises")


@pyq.job(name="ChaosUnprintable", retry=False)
def unprintable(name: str) -> None:
    """Raises an exception whose ``str()`` itself raises."""
    raise _Unprintable(name)
