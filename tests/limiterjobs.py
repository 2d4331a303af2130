"""Jobs for the limiter and priority tests, run in real pyq processes (``require: [limiterjobs]``).

Limits come from the environment the pool inherits, so each test sizes its own. Each job records in the
test Redis what it did: the holders of ``gw`` at once (a zset of the running holders, each scored by
the moment its lease lapses, and the highest count seen), the time each ``mail`` got through, and the
order in which ``Ordered`` jobs ran.
"""

from __future__ import annotations

import json
import os
import time

import pyq
from workerjobs import conn

GW = pyq.limiter.concurrent("gw", 4, lock_timeout=float(os.environ.get("TEST_GW_LOCK_TIMEOUT_S", "30")),
                            wait_timeout=30)
MAIL = pyq.limiter.window("mail", int(os.environ.get("TEST_MAIL_COUNT", "100")),
                          float(os.environ.get("TEST_MAIL_SECONDS", "2")), wait_timeout=0)

#: Counts this job as a holder: drops holders whose lease has lapsed (a killed process's, which never
#: leave by themselves), adds this one until its own lease lapses, and keeps the highest count seen.
_ENTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


@pyq.job(name="Gateway")
def gateway(token: str, seconds: float) -> None:
    r = conn()
    with GW as lease:
        lapses_at = r.zscore("pyq:lmtr-c-gw", lease.token)
        member = f"{token}:{os.getpid()}:{lease.token}"
        n = r.eval(_ENTER, 2, "test:holders", "test:max_holders", time.time(), lapses_at, member)
        r.rpush("test:entries", json.dumps([time.time(), n, os.getpid()]))
        time.sleep(seconds)
        r.zrem("test:holders", member)
    r.rpush("test:done", token)


@pyq.job(name="Mail", limits=[MAIL])
def mail(token: str) -> None:
    conn().rpush("test:sent", json.dumps([time.time(), token]))


@pyq.job(name="Sync", limits_concurrency=(1, lambda account, seconds: f"account-{account}"))
def sync(account: int, seconds: float) -> None:
    """One sync per account at a time: records how many of the same account ran at once."""
    r = pyq.current().redis  # the worker's own connection: this job also runs in the test process
    n = r.incr(f"test:syncing:{account}")
    r.rpush("test:sync_peaks", n)
    time.sleep(seconds)
    r.decr(f"test:syncing:{account}")
    r.rpush("test:done", f"{account}")


@pyq.job(name="Ordered")
def ordered(token: str) -> None:
    conn().rpush("test:order", token)


@pyq.job(name="Blocker")
def blocker(seconds: float) -> None:
    conn().rpush("test:blocker", "started")
    time.sleep(seconds)
