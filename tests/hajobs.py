"""Jobs for the high-availability tests: they record their token through whatever URL the pool uses.

``PYQ_REDIS_URL`` may be a Sentinel or TLS URL, so the connection comes from :func:`pyq.connection.connect`.
A record that meets a failover is retried until it lands. A record the dying master took but had not yet
passed to a replica is gone with it, while the job ran and its ack reaches the new master; so each run is
also appended to ``ran.log`` in the pool's directory, which no failover touches, and a test counts lost
enqueues, not lost records.
"""

from __future__ import annotations

import os
import time

import redis

import pyq
from pyq.connection import connect

DONE = "test:done"
RAN_LOG = "ran.log"  #: relative: a pool runs in its test's directory
_conn: tuple[int, redis.Redis] | None = None


def conn() -> redis.Redis:
    global _conn
    if _conn is None or _conn[0] != os.getpid():
        _conn = (os.getpid(), connect(os.environ["PYQ_REDIS_URL"]))
    return _conn[1]


@pyq.job(name="HARecord")
def ha_record(token: str) -> None:
    with open(RAN_LOG, "a") as ran:  # one short append: whole lines even from many processes
        ran.write(f"{token}\n")
    deadline = time.monotonic() + 60
    while True:
        try:
            conn().sadd(DONE, token)
            return
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
