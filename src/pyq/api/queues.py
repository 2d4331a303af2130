"""Admin view of ``queues`` and ``queue:NAME`` lists."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..connection import text
from ..keys import Keys
from .entry import decode
from .stats import latency_s

#: How far around its listed index a queued job is looked for when acting on it (the list moves).
FIND_WINDOW = 500


@dataclass(frozen=True)
class QueuedJob:
    """One waiting job as a page lists it: its place, the raw bytes and the decoded job (None if unreadable).

    ``place`` is ``INDEX`` in the list (LRANGE index, 0 = the newest) or ``pRANK`` in the queue's priority
    set (ZREVRANGE rank, 0 = the last to run).
    """

    place: str
    raw: bytes
    job: dict[str, Any] | None

    @property
    def key(self) -> str:
        """``PLACE|JID``: names the job in a link or form."""
        return f"{self.place}|{self.job.get('jid') if self.job else ''}"


def parse_queue_key(key: str) -> tuple[str, str]:
    """(place, jid) of a :attr:`QueuedJob.key`; ValueError when it is not one."""
    place, _, jid = key.partition("|")
    _place_index(place)
    if not jid:
        raise ValueError(f"not a job key: {key!r}")
    return place, jid


def _place_index(place: str) -> int:
    digits = place[1:] if place.startswith("p") else place
    if not digits.isdigit():
        raise ValueError(f"not a place in a queue: {place!r}")
    return int(digits)


def _jid(raw: bytes) -> str | None:
    job = decode(raw)
    return str(job.get("jid")) if job and job.get("jid") else None


class QueueOps:
    """Queue names, sizes, contents and latency."""

    redis: Any
    keys: Keys

    def queue_names(self) -> list[str]:
        return sorted(map(text, self.redis.smembers(self.keys.queues)))

    def queue_size(self, name: str) -> int:
        """Jobs waiting in ``name``: its list and its jobs with a priority (``pyq:prio:NAME``)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.keys.queue(name))
        pipe.zcard(self.keys.prio(name))
        return sum(int(n) for n in pipe.execute())

    def queue_jobs(self, name: str, start: int = 0, stop: int = -1) -> list[dict[str, Any]]:
        """Jobs from the oldest (taken next) to the newest."""
        raws = self.redis.lrange(self.keys.queue(name), start, stop)
        return [decode(r) or {"raw": r} for r in reversed(raws)]

    def queue_latency(self, name: str, now_s: float | None = None) -> float:
        """Seconds the oldest job has waited (0 for an empty queue)."""
        return latency_s(self.redis.lindex(self.keys.queue(name), -1), time.time() if now_s is None else now_s)

    def queue_clear(self, name: str) -> int:
        """Delete every job waiting in ``name`` and forget the queue (Sidekiq's Queue#clear); returns the count."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.queue(name))
        pipe.zcard(self.keys.prio(name))
        pipe.unlink(self.keys.queue(name), self.keys.prio(name))
        pipe.srem(self.keys.queues, name)
        listed, prioritised, *_ = pipe.execute()
        return int(listed) + int(prioritised)

    def queue_page(self, name: str, start: int, count: int) -> list[QueuedJob]:
        """``count`` waiting jobs of ``name`` from position ``start``, the last to run first: the jobs below
        the default priority, then the list (LRANGE from index 0, the newest), then the jobs above it."""
        return self._slice(name, start, count)[0]

    def queue_filter(self, name: str, needle: str, start: int = 0, window: int = 5000
                     ) -> tuple[list[QueuedJob], int]:
        """Jobs whose raw JSON contains ``needle`` among the ``window`` from position ``start`` (a list has no
        MATCH scan, so the window bounds the work); returns (matches, next start, 0 when at the end)."""
        jobs, total = self._slice(name, start, window)
        found = [j for j in jobs if needle in j.raw.decode("utf-8", "replace")]
        return found, start + window if start + window < total else 0

    def _slice(self, name: str, start: int, count: int) -> tuple[list[QueuedJob], int]:
        """Positions ``start``.. of the queue read as one sequence, and its length. The priority set's jobs sit
        by ZREVRANGE rank: ranks below ``below`` come before the list, the others after it."""
        queue_key, prio_key = self.keys.queue(name), self.keys.prio(name)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(prio_key, "(0", "+inf")
        pipe.llen(queue_key)
        pipe.zcard(prio_key)
        below, listed, prioritised = (int(n) for n in pipe.execute())
        total = below + listed + prioritised
        # (place prefix, first and end position of the segment, its position minus the index in its structure)
        segments = (("p", 0, below, 0), ("", below, below + listed, below), ("p", below + listed, total, listed))
        pieces: list[tuple[str, int, int]] = []  # (place prefix, first index in its structure, how many)
        for prefix, low, high, offset in segments:
            first, end = max(start, low), min(start + count, high)
            if first < end:
                pieces.append((prefix, first - offset, end - first))
        for prefix, first, n in pieces:
            if prefix:
                pipe.zrevrange(prio_key, first, first + n - 1)
            else:
                pipe.lrange(queue_key, first, first + n - 1)
        jobs = [QueuedJob(f"{prefix}{first + i}", raw, decode(raw))
                for (prefix, first, _), raws in zip(pieces, pipe.execute() if pieces else [], strict=True)
                for i, raw in enumerate(raws)]
        return jobs, total

    def queue_find(self, name: str, place: str, jid: str) -> bytes | None:
        """The raw job ``jid`` near ``place`` (within :data:`FIND_WINDOW`), None if not there."""
        rank = _place_index(place)
        low = max(0, rank - FIND_WINDOW)
        if place.startswith("p"):
            raws = self.redis.zrevrange(self.keys.prio(name), low, rank + FIND_WINDOW)
        else:
            raws = self.redis.lrange(self.keys.queue(name), low, rank + FIND_WINDOW)
        return next((bytes(raw) for raw in raws if _jid(raw) == jid), None)

    def queue_delete(self, name: str, place: str, jid: str) -> bool:
        """Remove job ``jid`` (listed at ``place``) from queue ``name``; False if it already left."""
        raw = self.queue_find(name, place, jid)
        if raw is None:
            return False
        if place.startswith("p"):
            return bool(self.redis.zrem(self.keys.prio(name), raw))
        return bool(self.redis.lrem(self.keys.queue(name), 1, raw))
