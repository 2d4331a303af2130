"""Jobs for the ACL and TLS tests: they record on a separate server (``RECORD_URL``), so the server under
test sees only the commands pyq itself sends."""

from __future__ import annotations

import os

import redis

import pyq

_conn: tuple[int, redis.Redis] | None = None


def conn() -> redis.Redis:
    global _conn
    if _conn is None or _conn[0] != os.getpid():
        _conn = (os.getpid(), redis.Redis.from_url(os.environ["RECORD_URL"]))
    return _conn[1]


@pyq.job(name="ACLRecord")
def acl_record(token: str) -> None:
    conn().sadd("test:done", token)


@pyq.job(name="ACLUnique", lock="until_executed")
def acl_unique(token: str) -> None:
    conn().sadd("test:done", token)


@pyq.job(name="ACLFailOnce")
def acl_fail_once(token: str) -> None:
    """Fails its first run, so that it goes through the retry set."""
    if conn().incr(f"test:runs:{token}") == 1:
        raise RuntimeError(f"first run of {token} fails on purpose")
    conn().sadd("test:done", token)


GATE = pyq.limiter.concurrent("acl-gate", 2, lock_timeout=30, wait_timeout=5)
WINDOW = pyq.limiter.window("acl-window", 100, 60, wait_timeout=0)


@pyq.job(name="ACLLimited", limits=[GATE], priority=5)
def acl_limited(token: str) -> None:
    """Runs under a concurrency limiter (declared) and a window limiter (in the body), at a priority."""
    with WINDOW:
        conn().sadd("test:done", token)
