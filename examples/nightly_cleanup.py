"""A recurring job: every night at 03:00 UTC, forget sessions idle for more than ``days`` days.

The schedule lives in config (sidekiq-cron's format), not in code; add this to ``config/queue.yml``
(or put the entry in a ``schedule.yml`` named by ``schedule_file``):

    cron:
      nightly_cleanup:
        cron: "0 3 * * *"
        class: examples.nightly_cleanup.cleanup_sessions
        queue: low
        args: [30]
        description: "Forget sessions idle for 30 days"

Every pyq process (and every Ruby sidekiq-cron process on the same Redis) polls the schedule; each night's
run is enqueued exactly once. Sessions live in the sorted set ``examples:sessions``, scored by the last
time they were seen (epoch seconds).
"""

from __future__ import annotations

import logging
import time

import pyq
from pyq.client import default_client

log = logging.getLogger("examples.nightly_cleanup")

#: Sorted set of session ids scored by last-seen epoch seconds (an application key, not one of pyq's).
SESSIONS_KEY = "examples:sessions"
#: The schedule above, as the ``cron`` config value it is.
SCHEDULE = {
    "nightly_cleanup": {
        "cron": "0 3 * * *",
        "class": "examples.nightly_cleanup.cleanup_sessions",
        "queue": "low",
        "args": [30],
        "description": "Forget sessions idle for 30 days",
    },
}


@pyq.job(queue="low", retry=3)
def cleanup_sessions(days: int, now_s: float | None = None) -> int:
    """Delete sessions last seen before ``now - days``; returns how many went."""
    cutoff = (time.time() if now_s is None else now_s) - days * 86_400
    removed = int(default_client().redis.zremrangebyscore(SESSIONS_KEY, "-inf", f"({cutoff}"))
    log.info("removed %d session(s) idle for more than %d days", removed, days)
    return removed
