"""Reads batches: one batch's counters and members (:func:`read`), and the list of batches (:func:`listing`).

The layout is Sidekiq Pro's: the hash ``b-BID`` holds the counters, ``b-BID-jids`` the members that have
not succeeded yet, ``b-BID-failed`` those that failed at least once, ``b-BID-died`` those buried in the
dead set; the ``batches`` zset lists them by expiry. Nothing here writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from . import results
from .connection import reply_float, reply_int, text
from .keys import Keys


class NoSuchBatch(LookupError):
    """A batch id that names no batch: never created, or expired."""


@dataclass(frozen=True)
class BatchStatus:
    """One batch as it stands: Sidekiq Pro's ``Batch::Status`` fields."""

    bid: str
    description: str
    created_at: float
    expires_at: float
    total: int                #: jobs that were ever members (callbacks of child batches included)
    pending: int              #: jobs that have not succeeded yet
    failures: int             #: jobs that failed at least once and have not succeeded since
    failed_jids: list[str]
    dead_jids: list[str]
    kids: int                 #: child batches that have not succeeded yet
    parent: str | None
    complete_at: float | None
    success_at: float | None
    death_at: float | None
    is_open: bool             #: a ``with pyq.Batch`` block is still pushing into it
    callbacks: list[str] = field(default_factory=list)  #: the events it has a callback for
    redis: Any = field(default=None, repr=False, compare=False)
    keys: Keys = field(default_factory=Keys, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """Every job has succeeded or failed at least once (and every child batch completed)."""
        return self.complete_at is not None

    @property
    def success(self) -> bool:
        """Every job has succeeded (after retries), and so has every child batch."""
        return self.success_at is not None

    @property
    def state(self) -> str:
        """One word for lists: success, complete (with failures), open (still being pushed into) or running."""
        if self.success:
            return "success"
        if self.complete:
            return "complete"
        return "open" if self.is_open else "running"

    def as_dict(self) -> dict[str, Any]:
        """Its fields, complete, success and state, for JSON (without the Redis handle)."""
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.name not in ("redis", "keys")}
        return {**fields, "complete": self.complete, "success": self.success, "state": self.state}

    def results(self) -> dict[str, Any]:
        """The stored results of the batch's jobs that keep one (``result_ttl``), by jid.

        A job that ended without succeeding has its :class:`~pyq.JobFailed` as its value.
        """
        found: dict[str, Any] = {}
        for jid in sorted(text(j) for j in self.redis.smembers(self.keys.batch_results(self.bid))):
            blob = self.redis.lindex(self.keys.result(jid), 0)
            if blob is None:
                continue
            try:
                found[jid] = results.decode(jid, blob)
            except results.JobFailed as failed:
                found[jid] = failed
        return found


def read(redis: Any, keys: Keys, bid: str) -> BatchStatus:
    """Batch ``bid`` now; raises :class:`NoSuchBatch` when it is gone."""
    found = read_many(redis, keys, [bid])
    if not found:
        raise NoSuchBatch(f"no batch {bid!r} (never created, or expired)")
    return found[0]


def read_many(redis: Any, keys: Keys, bids: list[str]) -> list[BatchStatus]:
    """The batches of ``bids`` that still exist, in that order, in one round trip."""
    pipe = redis.pipeline(transaction=True)
    for bid in bids:
        pipe.hgetall(keys.batch(bid))
        pipe.smembers(keys.batch_failed(bid))
        pipe.smembers(keys.batch_died(bid))
    replies = pipe.execute() if bids else []
    return [_status(redis, keys, bid, *replies[3 * i:3 * i + 3]) for i, bid in enumerate(bids) if replies[3 * i]]


def _status(redis: Any, keys: Keys, bid: str, fields: dict[Any, Any], failed: set[Any], died: set[Any]) -> BatchStatus:
    h = {text(k): v for k, v in fields.items()}

    def when(name: str) -> float | None:
        return reply_float(h[name]) if name in h else None

    return BatchStatus(
        bid=bid, description=text(h.get("description") or ""), created_at=reply_float(h.get("created_at")),
        expires_at=reply_float(h.get("expires_at")), total=reply_int(h.get("total")),
        pending=reply_int(h.get("pending")), failures=reply_int(h.get("failures")),
        failed_jids=sorted(j for j in map(text, failed) if not j.startswith("b-")),
        dead_jids=sorted(map(text, died)), kids=reply_int(h.get("kids")), parent=text(h.get("parent") or "") or None,
        complete_at=when("complete_at"), success_at=when("success_at"), death_at=when("death_at"),
        is_open=reply_int(h.get("open")) > 0,
        callbacks=sorted(name[3:] for name in h if name.startswith("cb-") and name.count("-") == 1),
        redis=redis, keys=keys)


def listing(redis: Any, keys: Keys, *, offset: int = 0, limit: int = 25) -> tuple[int, list[BatchStatus]]:
    """(how many batches are listed, the page of them from ``offset``, newest first, read in one round trip);
    expired ones are skipped."""
    now_s = time.time()
    total = redis.zcount(keys.batches, now_s, "+inf")
    bids = redis.zrevrangebyscore(keys.batches, "+inf", now_s, start=offset, num=limit)
    return total, read_many(redis, keys, [text(bid) for bid in bids])
