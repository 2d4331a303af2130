"""One digest's lock as held by one jid: take (optionally storing the job in the same script), release."""

from __future__ import annotations

import time
from typing import Any

from ..keys import Keys
from ..scripts import Scripts
from .options import LOCK_TYPES


class Lock:
    """One digest's lock, as held by one jid."""

    def __init__(self, redis: Any, keys: Keys, job: dict[str, Any], suffix: str = "") -> None:
        self.redis, self.keys, self.job, self.jid = redis, keys, job, job.get("jid") or ""
        self.digest = base_digest(job["lock_digest"]) + suffix
        self.kind = LOCK_TYPES.get(job.get("lock"), "until_executed")  # type: ignore[arg-type]

    def _k(self, suffix: str = "") -> str:
        return self.keys.unique(self.digest, suffix)

    def take(self, store_keys: Any = None, store_args: Any = None, score: str = "") -> tuple[bool, str | None]:
        """Take the lock (and store the job when store_args carries it); (won, holder jid)."""
        queue = self.job.get("queue") or "default"
        store_keys = store_keys or (self.keys.queues, self.keys.queue(queue), self.keys.schedule, self.keys.wake(queue))
        keys = (self._k(), self._k("LOCKED"), self.keys.unique_digests, self.keys.unique_expiring_digests, *store_keys)
        args = (self.jid, _pttl_ms(self.job), self.kind, score, repr(time.time()), *(store_args or (queue, "", 0)))
        won, holder = Scripts(self.redis).run("lock_push", keys, args)
        return bool(won), holder.decode() if isinstance(holder, bytes) else holder

    def release(self) -> bool:
        keys = (self._k(), self._k("QUEUED"), self._k("PRIMED"), self._k("LOCKED"), self._k("INFO"),
                self.keys.unique_digests)
        return bool(Scripts(self.redis).run("unlock", keys, (self.jid, self.kind)))

    def ensure(self) -> bool:
        """Held by this jid already, or taken now."""
        return bool(self.redis.hexists(self._k("LOCKED"), self.jid)) or self.take()[0]

    def acquire(self, wait_s: float) -> bool:
        """Take the lock, waiting up to wait_s for a release token on ``:QUEUED``."""
        deadline = time.monotonic() + wait_s
        while not self.take()[0]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.redis.brpop([self._k("QUEUED")], timeout=max(0.01, min(remaining, 1.0)))
        return True


def base_digest(dig: str) -> str:
    return dig[: -len(":RUN")] if dig.endswith(":RUN") else dig


def _pttl_ms(job: dict[str, Any]) -> int:
    try:
        return max(0, int(float(job.get("lock_ttl") or 0))) * 1000
    except (TypeError, ValueError):
        return 0
