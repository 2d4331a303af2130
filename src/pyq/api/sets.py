"""Admin view and operations over the ``schedule``, ``retry`` and ``dead`` sorted sets.

Every change is atomic and happens at most once: the entry is removed and its
replacement written in one MULTI/EXEC that is discarded if the set changed
after it was read (WATCH), so two admins pressing "retry" on the same entry
push it once, and a poller promoting it at the same moment wins or loses as a
whole. Re-pushed jobs do not pass through client middleware (as promotion).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from redis.exceptions import WatchError

from .. import payload, scripts
from ..errors import PyqError
from ..keys import Keys
from ..scripts import WAKE_CAP, DeadLimits
from .entry import Entry, decode

SORTED_SETS = ("schedule", "retry", "dead")
#: Optimistic attempts per operation before giving up on a set that keeps changing.
MAX_TRIES = 50


class SetOps:
    """``set_size``, ``set_entries``, ``find_in_set`` and the admin changes, for each sorted set."""

    redis: Any
    keys: Keys

    def _set_key(self, name: str) -> str:
        if name not in SORTED_SETS:
            raise ValueError(f"unknown sorted set {name!r}; expected one of {', '.join(SORTED_SETS)}")
        return getattr(self.keys, name)

    # --- reading ---------------------------------------------------------------------
    def set_size(self, name: str) -> int:
        return int(self.redis.zcard(self._set_key(name)))

    def set_entries(self, name: str, start: int = 0, stop: int = -1) -> list[Entry]:
        """Entries by score, earliest first."""
        rows = self.redis.zrange(self._set_key(name), start, stop, withscores=True)
        return [Entry(score, raw, decode(raw)) for raw, score in rows]

    def find_in_set(self, name: str, jid: str) -> Entry | None:
        for entry in self._scan_set(name):
            if entry.jid == jid:
                return entry
        return None

    def _scan_set(self, name: str) -> Iterator[Entry]:
        for raw, score in self.redis.zscan_iter(self._set_key(name)):
            yield Entry(score, raw, decode(raw))

    # --- changing ----------------------------------------------------------------------
    def set_delete(self, name: str, entry: Entry | str) -> bool:
        """Remove one entry (an Entry or a jid); False if it was already gone."""
        found = self._entry(name, entry)
        return bool(found and self.redis.zrem(self._set_key(name), found.raw))

    def set_clear(self, name: str) -> int:
        """Empty the set; returns how many entries it held."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zcard(self._set_key(name))
        pipe.delete(self._set_key(name))
        return int(pipe.execute()[0])

    def set_retry(self, name: str, entry: Entry | str, now_s: float | None = None) -> bool:
        """Sidekiq's "retry now": the job back to its queue with ``retry_count`` lowered by one
        (retry and dead sets), so a manual retry costs none of its budget. False if already gone."""
        found = self._entry(name, entry)
        if found is None:
            return False
        job = _readable(found)
        if name != "schedule" and _is_count(job.get("retry_count")):
            job["retry_count"] -= 1
        job["enqueued_at"] = payload.timestamp(now_s, payload.time_style_of(job))
        queue = payload.queue_of(job)
        return self._replace(name, found, lambda pipe: self._push(pipe, queue, payload.dumps(job)))

    def set_retry_all(self, name: str, now_s: float | None = None) -> int:
        """Retry every readable entry; returns how many were pushed."""
        return sum(self.set_retry(name, e, now_s) for e in list(self._scan_set(name)) if e.job is not None)

    def set_kill(self, entry: Entry | str, *, dead: DeadLimits, now_s: float | None = None) -> bool:
        """Move a retry entry to the dead set now (``lua/kill.lua``, trimmed as every burial); False if gone."""
        found = self._entry("retry", entry)
        if found is None:
            return False
        call = scripts.kill(self.keys, "retry", job=found.raw, now_s=time.time() if now_s is None else now_s,
                            dead=dead)
        return bool(call.run(self.redis))

    # --- internals -------------------------------------------------------------------------
    def _entry(self, name: str, entry: Entry | str) -> Entry | None:
        return self.find_in_set(name, entry) if isinstance(entry, str) else entry

    def _push(self, pipe: Any, queue: str, raw: str) -> None:
        wake = self.keys.wake(queue)
        pipe.sadd(self.keys.queues, queue)
        pipe.lpush(self.keys.queue(queue), raw)
        pipe.lpush(wake, "1")
        pipe.ltrim(wake, 0, WAKE_CAP - 1)

    def _replace(self, name: str, entry: Entry, write: Callable[[Any], None]) -> bool:
        """ZREM ``entry`` and run ``write`` in one transaction, only if the entry is still there."""
        key = self._set_key(name)
        with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_TRIES):
                try:
                    pipe.watch(key)
                    if pipe.zscore(key, entry.raw) is None:
                        return False
                    pipe.multi()
                    pipe.zrem(key, entry.raw)
                    write(pipe)
                    pipe.execute()
                    return True
                except WatchError:
                    continue
        raise PyqError(f"{name} kept changing; gave up after {MAX_TRIES} tries (jid={entry.jid})")


def _readable(entry: Entry) -> dict[str, Any]:
    if entry.job is None:
        raise ValueError(f"entry is not a job and cannot be re-queued: {entry.raw[:80]!r}")
    return dict(entry.job)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


