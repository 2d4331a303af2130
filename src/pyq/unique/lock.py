"""One digest's lock as held by one jid: take (optionally storing the job in the same script), release."""

from __future__ import annotations

import time
from typing import Any

from .. import scripts
from ..keys import Keys
from ..priority import priority_of
from ..scripts import Call
from .options import LOCK_TYPES


class Lock:
    """One digest's lock, as held by one jid."""

    def __init__(self, redis: Any, keys: Keys, job: dict[str, Any], suffix: str = "") -> None:
        self.redis, self.keys, self.job, self.jid = redis, keys, job, job.get("jid") or ""
        self.digest = base_digest(job["lock_digest"]) + suffix
        self.kind = LOCK_TYPES.get(job.get("lock"), "until_executed")  # type: ignore[arg-type]

    def take_call(self, raw: str | None = None, at_s: float | None = None) -> Call:
        """The ``lock_push.lua`` call: take the lock and, when ``raw`` is given, store that job (at ``at_s``)."""
        return scripts.lock_push(self.keys, self.digest, self.job.get("queue") or "default", jid=self.jid,
                                 pttl=_pttl_ms(self.job), lock_type=self.kind,
                                 lock_score=repr(at_s) if at_s else "", now_s=time.time(), at_s=at_s,
                                 priority=priority_of(self.job), payload=raw)

    def take(self) -> tuple[bool, str | None]:
        """Take the lock only (server side); (won, holder jid)."""
        return taken(self.take_call().run(self.redis))

    def release(self) -> bool:
        return bool(scripts.unlock(self.keys, self.digest, jid=self.jid, lock_type=self.kind).run(self.redis))

    def ensure(self) -> bool:
        """Held by this jid already, or taken now."""
        return bool(self.redis.hexists(self.keys.unique(self.digest, "LOCKED"), self.jid)) or self.take()[0]

    def acquire(self, wait_s: float) -> bool:
        """Take the lock, waiting up to wait_s for a release token on ``:QUEUED``."""
        deadline = time.monotonic() + wait_s
        while not self.take()[0]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.redis.brpop([self.keys.unique(self.digest, "QUEUED")], timeout=max(0.01, min(remaining, 1.0)))
        return True


def taken(result: Any) -> tuple[bool, str | None]:
    """``lock_push.lua``'s answer as (won, holder jid)."""
    won, holder = result
    return bool(won), holder.decode() if isinstance(holder, bytes) else holder


def base_digest(dig: str) -> str:
    return dig[: -len(":RUN")] if dig.endswith(":RUN") else dig


def _pttl_ms(job: dict[str, Any]) -> int:
    try:
        return max(0, int(float(job.get("lock_ttl") or 0))) * 1000
    except (TypeError, ValueError):
        return 0
