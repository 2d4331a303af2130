"""Cancelling a job by jid (``pyq.cancel``, ``pyq cancel JID``): taken out before it runs, or asked to stop.

A job that waits (in a queue, the schedule or the retry set) is taken out by ``lua/cancel.lua`` and
recorded in the audit list ``pyq:cancelled`` (kept as long as dead jobs, ``dead_timeout``). A job that
runs is asked to stop: the ``cancelled`` field of its iteration state ``it-JID`` is set, as Ruby's
``Sidekiq::IterableJob#cancel!`` sets it (so a cancel from either side reaches either worker), and its
jid is published on ``pyq:cancel``, which every pyq worker process listens to, so the job's
``pyq.current().interrupted`` turns true at once. The job is recorded when it stops.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import payload, scripts
from .iteration.state import cancel as mark_cancelled
from .keys import Keys
from .locate import locate

#: Where a waiting job is (as :func:`locate` names it) -> the source :func:`scripts.cancel` takes it from.
_SOURCES = {"queued": "queue", "scheduled": "schedule", "retrying": "retry"}
#: Lookups before giving up on a job that keeps moving between the lookup and the take-out.
_ATTEMPTS = 3


def cancel(redis: Any, keys: Keys, jid: str, *, keep_s: int, now_s: float | None = None) -> str:
    """Cancel ``jid``; returns where it was: queued, scheduled or retrying (taken out), running (asked to
    stop), dead (it had already ended: nothing changes) or unknown (not found: flagged, in case it runs)."""
    now_s = time.time() if now_s is None else now_s
    found = locate(redis, keys, jid)
    for _ in range(_ATTEMPTS):
        if found.place not in _SOURCES or found.raw is None:
            break
        record = audit_record(found.raw, found.place, now_s)
        call = scripts.cancel(keys, _SOURCES[found.place], found.queue, raw=found.raw, record=record,  # type: ignore[arg-type]
                              now_s=now_s, keep_s=keep_s)
        if call.run(redis):
            return found.place
        found = locate(redis, keys, jid)  # it moved (started, or was retried) meanwhile: look again
    if found.place == "dead":
        return "dead"
    mark_cancelled(redis, keys, jid, now_s)
    redis.publish(keys.cancel_channel, jid)
    return found.place


def audit_record(raw: bytes, where: str, now_s: float) -> str:
    """The audit list's entry for a cancelled job: who it was, where it was, when."""
    job = payload.try_loads(raw) or {}
    return json.dumps({"jid": job.get("jid"), "class": payload.display_class(job) if job else None,
                       "queue": job.get("queue"), "args": job.get("args"), "where": where, "cancelled_at": now_s},
                      separators=(",", ":"))


def cancelled(redis: Any, keys: Keys, limit: int = 100) -> list[dict[str, Any]]:
    """The audit list, newest first."""
    return [json.loads(entry) for entry in redis.zrevrange(keys.cancelled, 0, limit - 1)]
