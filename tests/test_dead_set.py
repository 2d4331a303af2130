"""Every writer to the dead set goes through one bury path, so dead_max_jobs and dead_timeout govern each.

The four writers: a failure (``fail.lua``, see test_processor), a crash burial (``recover.lua``), the
unique-jobs ``reject`` strategy and an admin kill (``kill.lua``, see test_api_sets).
"""

from __future__ import annotations

import json
import time

import redis

import pyq
from pyq.keys import Keys, utc_day
from pyq.scheduler import MAX_CRASHES, recover_process
from pyq.scripts import DeadLimits

LIMITS = DeadLimits(timeout_s=100, max_jobs=3)


def crowded_dead_set(r: redis.Redis, now_s: float) -> None:
    """One entry too old for LIMITS and three young ones: after an insert, the trim keeps the newest young one
    (Sidekiq's ZREMRANGEBYRANK 0 -max_jobs leaves max_jobs - 1 entries, the new one included)."""
    r.zadd("dead", {"ancient": now_s - 1000, "young1": now_s - 30, "young2": now_s - 20, "young3": now_s - 10})


def test_a_crash_burial_trims_the_dead_set_and_counts_a_failure(r: redis.Redis) -> None:
    now_s = time.time()
    crowded_dead_set(r, now_s)
    raw = json.dumps({"class": "X", "args": [], "queue": "q", "jid": "j1"}, separators=(",", ":"))
    r.set(Keys().crashes("j1"), MAX_CRASHES - 1)
    r.lpush(Keys().inflight("h:1:a"), raw)
    assert recover_process(r, Keys(), "h:1:a", now_s=now_s, dead=LIMITS) == 0
    members = [m.decode() for m in r.zrange("dead", 0, -1)]
    assert members[0] == "young3" and json.loads(members[1])["jid"] == "j1" and len(members) == 2
    day = utc_day(now_s)
    assert [int(r.get(k) or 0) for k in ("stat:processed", f"stat:processed:{day}", "stat:failed",
                                         f"stat:failed:{day}")] == [1, 1, 1, 1]


def test_the_unique_reject_strategy_trims_the_dead_set_as_configured(redis_url: str, r: redis.Redis) -> None:
    client = pyq.Client(redis_url, dead=LIMITS)
    crowded_dead_set(r, time.time())
    job = {"class": "Sync::User", "args": [7], "lock": "until_executed", "on_conflict": "reject"}
    assert client.push(dict(job)) and client.push(dict(job)) is None
    members = r.zrange("dead", 0, -1)
    assert members[0] == b"young3" and json.loads(members[1])["class"] == "Sync::User" and len(members) == 2
    assert not r.exists("stat:failed")  # a rejected push never ran: no failure is counted (as Sidekiq's kill)
