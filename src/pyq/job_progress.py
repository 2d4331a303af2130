"""Progress a running job reports (``pyq.current().progress(done, total)``), and reading it back by jid.

Progress lives in the hash ``pyq:progress:JID`` (``done``, ``total``, ``message``, ``at``), whose TTL
is renewed by every write, so a finished job's last state can still be read for a while and then goes
away by itself. Writes are throttled to one per :data:`PROGRESS_INTERVAL_S`: a loop that reports every
item costs at most two round trips a second. The state a job ends with is always written: a report
with ``done >= total`` goes out at once, and one held back is written when the job ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cluster import slot_client
from .connection import reply_float, reply_int, text
from .keys import Keys

#: Seconds between two progress writes of one job; reports in between are held back.
PROGRESS_INTERVAL_S = 0.5
#: Seconds a job's progress is kept after its last write (long enough to outlive a retry wait of days).
PROGRESS_TTL_S = 3 * 86_400


@dataclass(frozen=True)
class Progress:
    """A job's progress as last written: ``done`` of ``total`` (None = unknown), a message, when."""

    jid: str
    done: int
    total: int | None
    message: str | None
    updated_at: float  #: epoch seconds of the write

    @property
    def fraction(self) -> float | None:
        """``done / total`` (0..1), or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def label(self) -> str:
        """One short line for ``pyq busy`` and the dashboard: ``37/100 (37%) importing``."""
        counted = f"{self.done}" if self.total is None else f"{self.done}/{self.total}"
        fraction = self.fraction
        share = "" if fraction is None else f" ({fraction:.0%})"
        return f"{counted}{share}{f' {self.message}' if self.message else ''}"

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "message": self.message, "updated_at": self.updated_at}


class Reporter:
    """One running job's progress: merges reports, writes at most one per ``interval_s``.

    ``total`` or ``message`` given as None keep the last value reported, so a loop can name its total
    once. Without a Redis connection (inline test mode) the reports are only kept in memory.
    """

    def __init__(self, redis: Any, keys: Keys, jid: str, *, interval_s: float = PROGRESS_INTERVAL_S,
                 ttl_s: int = PROGRESS_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.key = keys.progress(jid)
        self.jid = jid
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self._clock = clock
        self.done = 0
        self.total: int | None = None
        self.message: str | None = None
        self._written_at = -math.inf
        self._dirty = False
        self.writes = 0  #: writes sent to Redis

    def report(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Record progress; written now unless the last write was under ``interval_s`` ago (and not finished)."""
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise TypeError(f"progress: done must be an integer >= 0, got {done!r}")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise TypeError(f"progress: total must be an integer >= 0 or None, got {total!r}")
        self.done = done
        self.total = total if total is not None else self.total
        self.message = str(message) if message is not None else self.message
        self._dirty = True
        finished = self.total is not None and done >= self.total
        if finished or self._clock() - self._written_at >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        """Write what was held back, if anything."""
        if not self._dirty:
            return
        self._dirty = False
        self._written_at = self._clock()
        if self.redis is None:
            return
        fields = {"done": self.done, "total": "" if self.total is None else self.total,
                  "message": self.message or "", "at": repr(time.time())}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key, mapping=fields)
        pipe.expire(self.key, self.ttl_s)
        pipe.execute()
        self.writes += 1


def read(redis: Any, keys: Keys, jid: str) -> Progress | None:
    """The progress last written for ``jid``, or None when it reported none (or it expired)."""
    return _parse(jid, redis.hgetall(keys.progress(jid)))


def read_many(redis: Any, keys: Keys, jids: list[str]) -> dict[str, Progress]:
    """jid -> progress for those of ``jids`` that reported some, in one round trip (``pyq busy``, the dashboard)."""
    if not jids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for jid in jids:
        pipe.hgetall(keys.progress(jid))
    rows = zip(jids, pipe.execute(), strict=True)
    return {jid: found for jid, row in rows if (found := _parse(jid, row)) is not None}


def _parse(jid: str, row: dict[Any, Any]) -> Progress | None:
    raw = {text(k): text(v) for k, v in row.items()}
    if "done" not in raw:
        return None
    total = raw.get("total", "")
    return Progress(jid, reply_int(raw["done"]), reply_int(total) if total else None, raw.get("message") or None,
                    reply_float(raw.get("at", "")))


def recent(redis: Any, keys: Keys, *, max_calls: int = 20, count: int = 1000) -> tuple[list[Progress], bool]:
    """Every job's progress found by ``SCAN MATCH pyq:progress:*`` within ``max_calls`` calls of ``count``, newest
    report first, and whether the scan stopped before the end: bounded work however many keys Redis holds."""
    prefix = keys.progress("")
    scanned = slot_client(redis, prefix)  # on a cluster, the node holding every pyq key
    jids: list[str] = []
    cursor, calls = 0, 0
    while True:
        cursor, found = scanned.scan(cursor, match=prefix + "*", count=count, _type="hash")
        jids += [text(k)[len(prefix):] for k in found]
        calls += 1
        if cursor == 0 or calls >= max_calls:
            break
    rows = sorted(read_many(redis, keys, jids).values(), key=lambda p: p.updated_at, reverse=True)
    return rows, cursor != 0
