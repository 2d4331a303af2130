"""Finding a job by jid: in the retry set, the schedule, the dead set, a running process, or a queue.

Sidekiq's API finds jobs this way too (``find_job`` scans), so a lookup costs time in proportion to
the size of those sets and lists; :mod:`pyq.results` reads a status with it and :mod:`pyq.cancel`
finds what to take out (or to flag while it runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from . import payload
from .keys import Keys

Place = Literal["retrying", "scheduled", "dead", "running", "queued", "unknown"]
#: Rows read per LRANGE while scanning a list.
_PAGE = 1000


@dataclass(frozen=True)
class Found:
    """Where a job is, with its exact payload and the key that holds it (a queue, a set, or the in-flight
    list of the pyq process running it); ``raw`` is None for a job only a Sidekiq busy hash shows."""

    place: Place
    raw: bytes | None = None
    key: str = ""


def locate(redis: Any, keys: Keys, jid: str) -> Found:
    """Where job ``jid`` is now."""
    needle = jid.encode()
    for place, key in (("retrying", keys.retry), ("scheduled", keys.schedule), ("dead", keys.dead)):
        for raw, _score in redis.zscan_iter(key, match=f"*{jid}*"):
            if _is(raw, jid):
                return Found(place, raw, key)
    running = _running(redis, keys, jid, needle)
    if running is not None:
        return running
    for name in sorted(q.decode() for q in redis.smembers(keys.queues)):
        raw = _in_list(redis, keys.queue(name), jid, needle)
        if raw is not None:
            return Found("queued", raw, keys.queue(name))
        for raw, _score in redis.zscan_iter(keys.prio(name), match=f"*{jid}*"):  # a job with a priority
            if _is(raw, jid):
                return Found("queued", raw, keys.prio(name))
    return Found("unknown")


def _is(raw: bytes, jid: str) -> bool:
    """Whether payload ``raw`` (already known to hold the jid's text somewhere) is job ``jid``."""
    job = payload.try_loads(raw)
    return job is not None and job.get("jid") == jid


def _running(redis: Any, keys: Keys, jid: str, needle: bytes) -> Found | None:
    """In a pyq in-flight list (running, or fetched and waiting for a slot), or in any process's busy hash
    (Sidekiq 6.0-6.4's name and 6.5+'s; a 7.x entry holds the payload as an escaped string, so there the
    bare jid is looked for)."""
    for owner in redis.smembers(keys.inflight_owners):
        key = keys.inflight(owner.decode())
        raw = _in_list(redis, key, jid, needle)
        if raw is not None:
            return Found("running", raw, key)
    for identity in redis.smembers(keys.processes):
        name = identity.decode()
        for busy in (keys.process_work(name), keys.process_workers(name)):
            if any(needle in work for work in redis.hvals(busy)):
                return Found("running")
    return None


def _in_list(redis: Any, key: str, jid: str, needle: bytes) -> bytes | None:
    start = 0
    while True:
        items = redis.lrange(key, start, start + _PAGE - 1)
        for raw in items:
            if needle in raw and _is(raw, jid):
                return raw
        if len(items) < _PAGE:
            return None
        start += _PAGE
