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
from typing import Any, Literal

from redis.exceptions import WatchError

from .. import payload, scripts
from ..errors import PyqError
from ..keys import Keys
from ..scripts import WAKE_CAP, DeadLimits
from .entry import Entry, decode, glob_escape, parse_key

SORTED_SETS = ("schedule", "retry", "dead")
#: Optimistic attempts per operation before giving up on a set that keeps changing.
MAX_TRIES = 50
#: Members one ZSCAN call of a filter asks for, and the calls one filtered page may make.
FILTER_SCAN_COUNT = 1000
FILTER_MAX_CALLS = 20


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

    def set_entry(self, name: str, key: str) -> Entry | None:
        """The entry an :attr:`Entry.key` names, found by its exact score (no scan of the set)."""
        score, jid = parse_key(key)
        rows = self.redis.zrangebyscore(self._set_key(name), score, score, withscores=True)
        found = (Entry(s, raw, decode(raw)) for raw, s in rows)
        return next((e for e in found if e.jid == jid), None)

    def set_filter(self, name: str, needle: str, cursor: int = 0, limit: int = 25,
                   max_calls: int = FILTER_MAX_CALLS) -> tuple[list[Entry], int]:
        """Entries whose raw JSON contains ``needle`` (ZSCAN MATCH ``*needle*``, as Sidekiq's Web UI),
        from ``cursor``; returns (the ``limit`` or more found, by score; the cursor to go on from, 0 = done).

        Bounded: at most ``max_calls`` ZSCAN calls of ``FILTER_SCAN_COUNT`` members each, so a rare
        needle in a large set returns fewer than ``limit`` entries and a non-zero cursor.
        """
        key, pattern, found = self._set_key(name), f"*{glob_escape(needle)}*", []
        for _ in range(max_calls):
            cursor, rows = self.redis.zscan(key, cursor, match=pattern, count=FILTER_SCAN_COUNT)
            found += [Entry(score, raw, decode(raw)) for raw, score in rows]
            if cursor == 0 or len(found) >= limit:
                break
        return sorted(found, key=lambda e: e.score), int(cursor)

    def find_in_set(self, name: str, jid: str) -> Entry | None:
        for entry in self._scan_set(name):
            if entry.jid == jid:
                return entry
        return None

    def set_scan(self, name: str) -> Iterator[Entry]:
        """Every entry, in ZSCAN order (for acting on a whole set; read it before changing the set)."""
        return self._scan_set(name)

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

    def set_add_to_queue(self, name: str, entry: Entry | str) -> bool:
        """Sidekiq's "add to queue": the job back to its queue as it is (retry_count unchanged)."""
        found = self._entry(name, entry)
        if found is None:
            return False
        job = _readable(found)
        job["enqueued_at"] = payload.timestamp(None, payload.time_style_of(job))
        queue = payload.queue_of(job)
        return self._replace(name, found, lambda pipe: self._push(pipe, queue, payload.dumps(job)))

    def set_retry_all(self, name: str, now_s: float | None = None) -> int:
        """Retry every readable entry; returns how many were pushed."""
        return sum(self.set_retry(name, e, now_s) for e in list(self._scan_set(name)) if e.job is not None)

    def set_kill(self, entry: Entry | str, *, dead: DeadLimits, now_s: float | None = None,
                 source: Literal["retry", "schedule"] = "retry") -> bool:
        """Move a retry (or scheduled) entry to the dead set now (``lua/kill.lua``, trimmed as every burial);
        False if gone."""
        found = self._entry(source, entry)
        if found is None:
            return False
        call = scripts.kill(self.keys, source, job=found.raw, now_s=time.time() if now_s is None else now_s,
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


