"""Admin view of ``queues`` and ``queue:NAME`` lists."""

from __future__ import annotations

import time
from typing import Any

from ..connection import text
from ..keys import Keys
from .entry import decode
from .stats import latency_s

#: How far around its listed index a queued job is looked for when acting on it (the list moves).
FIND_WINDOW = 500


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

    def queue_page(self, name: str, start: int, count: int) -> list[tuple[int, bytes, dict[str, Any] | None]]:
        """(index, raw, job) of ``count`` jobs from list index ``start`` (0 = the newest; LRANGE by index)."""
        raws = self.redis.lrange(self.keys.queue(name), start, start + count - 1)
        return [(start + i, raw, decode(raw)) for i, raw in enumerate(raws)]

    def queue_filter(self, name: str, needle: str, start: int = 0, window: int = 5000
                     ) -> tuple[list[tuple[int, bytes, dict[str, Any] | None]], int]:
        """Jobs whose raw JSON contains ``needle`` among the ``window`` from index ``start`` (a list has no
        MATCH scan, so the window bounds the work); returns (matches, next start, 0 when at the end)."""
        raws = self.redis.lrange(self.keys.queue(name), start, start + window - 1)
        found = [(start + i, raw, decode(raw)) for i, raw in enumerate(raws)
                 if needle in raw.decode("utf-8", "replace")]
        return found, start + window if len(raws) == window else 0

    def queue_find(self, name: str, index: int, jid: str) -> bytes | None:
        """The raw job ``jid`` near list index ``index`` (within :data:`FIND_WINDOW`), None if not there."""
        low = max(0, index - FIND_WINDOW)
        for raw in self.redis.lrange(self.keys.queue(name), low, index + FIND_WINDOW):
            if _jid(raw) == jid:
                return bytes(raw)
        return None

    def queue_delete(self, name: str, index: int, jid: str) -> bool:
        """Remove job ``jid`` (listed at ``index``) from queue ``name``; False if it already left."""
        raw = self.queue_find(name, index, jid)
        return raw is not None and bool(self.redis.lrem(self.keys.queue(name), 1, raw))
