"""Read and change state in Redis, for the CLI, the dashboard and tests.

Worker-side modules never import this one (Sidekiq's rule: the server does not
depend on the admin API). Names follow one grid across the three sorted sets:
``set_size``, ``set_entries``, and so on, each taking ``"schedule"``,
``"retry"`` or ``"dead"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import payload
from .keys import Keys

SORTED_SETS = ("schedule", "retry", "dead")


@dataclass(frozen=True)
class Entry:
    """One member of a sorted set: its score, the raw bytes and the decoded job (None if unreadable)."""

    score: float
    raw: bytes
    job: dict[str, Any] | None

    @property
    def jid(self) -> str | None:
        return self.job.get("jid") if self.job else None


class Api:
    """Admin view over one Redis connection (and namespace)."""

    def __init__(self, redis: Any, keys: Keys | None = None) -> None:
        self.redis = redis
        self.keys = keys or Keys()

    # --- queues ----------------------------------------------------------------
    def queue_names(self) -> list[str]:
        return sorted(n.decode() if isinstance(n, bytes) else n for n in self.redis.smembers(self.keys.queues))

    def queue_size(self, name: str) -> int:
        return int(self.redis.llen(self.keys.queue(name)))

    def queue_jobs(self, name: str, start: int = 0, stop: int = -1) -> list[dict[str, Any]]:
        """Jobs from the oldest (taken next) to the newest."""
        raws = self.redis.lrange(self.keys.queue(name), start, stop)
        return [_decode(r) or {"raw": r} for r in reversed(raws)]

    def queue_latency(self, name: str, now_s: float | None = None) -> float:
        """Seconds the oldest job has waited (0 for an empty queue)."""
        raw = self.redis.lindex(self.keys.queue(name), -1)
        job = _decode(raw) if raw else None
        if not job:
            return 0.0
        stamp = payload.to_epoch_s(job.get("enqueued_at")) or payload.to_epoch_s(job.get("created_at"))
        return max(0.0, (now_s or time.time()) - stamp) if stamp else 0.0

    # --- sorted sets ---------------------------------------------------------------
    def _set_key(self, name: str) -> str:
        if name not in SORTED_SETS:
            raise ValueError(f"unknown sorted set {name!r}; expected one of {', '.join(SORTED_SETS)}")
        return getattr(self.keys, name)

    def set_size(self, name: str) -> int:
        return int(self.redis.zcard(self._set_key(name)))

    def set_entries(self, name: str, start: int = 0, stop: int = -1) -> list[Entry]:
        """Entries by score, earliest first."""
        rows = self.redis.zrange(self._set_key(name), start, stop, withscores=True)
        return [Entry(score, raw, _decode(raw)) for raw, score in rows]

    def find_in_set(self, name: str, jid: str) -> Entry | None:
        for entry in self._scan_set(name):
            if entry.jid == jid:
                return entry
        return None

    def _scan_set(self, name: str):
        for raw, score in self.redis.zscan_iter(self._set_key(name)):
            yield Entry(score, raw, _decode(raw))

    # --- counters --------------------------------------------------------------------
    def stat(self, name: str) -> int:
        return int(self.redis.get(self.keys.stat(name)) or 0)


def _decode(raw: bytes | str | None) -> dict[str, Any] | None:
    try:
        return payload.loads(raw) if raw is not None else None
    except payload.InvalidPayload:
        return None
