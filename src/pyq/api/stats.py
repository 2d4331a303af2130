"""The numbers on the dashboard's front page and in ``pyq stats`` (Sidekiq's ``Stats``, sidekiqmon).

Everything is read in two pipelined round trips: one for counters, set sizes,
queue names and process identities, one for each queue's length and oldest job
plus each process's hash. Busy slots and the process count come from live
process hashes only (a hash without ``info`` is a dead entry, as in Sidekiq).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import payload
from ..connection import text
from ..keys import Keys
from .processes import ProcessInfo, read_processes


@dataclass(frozen=True)
class QueueStat:
    name: str
    size: int
    latency_s: float


@dataclass(frozen=True)
class Overview:
    """A snapshot of the whole system."""

    processed: int
    failed: int
    scheduled: int
    retries: int
    dead: int
    queues: list[QueueStat] = field(default_factory=list)
    processes: list[ProcessInfo] = field(default_factory=list)

    @property
    def enqueued(self) -> int:
        return sum(q.size for q in self.queues)

    @property
    def busy(self) -> int:
        return sum(p.busy for p in self.processes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` and the dashboard's API."""
        data = asdict(self)
        data.update(enqueued=self.enqueued, busy=self.busy, process_count=len(self.processes))
        return data


def overview(redis: Any, keys: Keys, now_s: float | None = None) -> Overview:
    """Read every headline number; ``now_s`` fixes the clock for latencies."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.stat("processed"))
    pipe.get(keys.stat("failed"))
    for name in ("schedule", "retry", "dead"):
        pipe.zcard(getattr(keys, name))
    pipe.smembers(keys.queues)
    processed, failed, scheduled, retries, dead, names = pipe.execute()
    queues = queue_stats(redis, keys, sorted(text(n) for n in names), now_s)
    return Overview(int(processed or 0), int(failed or 0), scheduled, retries, dead, queues,
                    read_processes(redis, keys))


def queue_stats(redis: Any, keys: Keys, names: list[str], now_s: float | None = None) -> list[QueueStat]:
    """Size (the list and the jobs with a priority) and latency (of the list) of each named queue, in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(keys.queue(name))
        pipe.lindex(keys.queue(name), -1)
        pipe.zcard(keys.prio(name))
    replies = pipe.execute() if names else []
    now_s = time.time() if now_s is None else now_s
    return [QueueStat(name, int(replies[3 * i]) + int(replies[3 * i + 2]), latency_s(replies[3 * i + 1], now_s))
            for i, name in enumerate(names)]


def latency_s(oldest: bytes | str | None, now_s: float) -> float:
    """Seconds the oldest job has waited, from ``enqueued_at`` (else ``created_at``); 0 if unknown."""
    if not oldest:
        return 0.0
    try:
        job = payload.loads(oldest)
    except payload.InvalidPayload:
        return 0.0
    stamp = payload.to_epoch_s(job.get("enqueued_at")) or payload.to_epoch_s(job.get("created_at"))
    return round(max(0.0, now_s - stamp), 3) if stamp else 0.0

