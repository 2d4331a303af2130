"""Admin view of ``queues`` and ``queue:NAME`` lists."""

from __future__ import annotations

import time
from typing import Any

from ..connection import text
from ..keys import Keys
from .entry import decode
from .stats import latency_s


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
