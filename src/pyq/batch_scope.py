"""Which batch a push joins, and which batch a finished job counts for: the two facts the client and the
worker need of :mod:`pyq.batches` without importing it.

``with pyq.Batch(...)`` sets :data:`open_batch` for the code inside the block (threads and asyncio tasks
started inside see it too, as context variables go); every job pushed while it is set carries the batch's
``bid`` and is made a member before it is pushed. A job whose payload carries a ``bid`` settles its
membership in the same script as its ack or failure.
"""

from __future__ import annotations

import contextvars
from typing import Any

from .batch_status import read
from .keys import Keys
from .scripts import BatchOutcome

#: The payload field naming the batch a job belongs to (Sidekiq Pro's).
BID_FIELD = "bid"
#: The payload field of a batch's callback job: {"bid": ..., "event": ...} (Ruby ignores it).
CALLBACK_FIELD = "batch_callback"


#: The batch that jobs pushed now join; None outside every ``with pyq.Batch(...)`` block.
open_batch: contextvars.ContextVar[str | None] = contextvars.ContextVar("pyq_open_batch", default=None)


class JoinedBatch:
    """``pyq.current().batch``: the batch of the running job, which it may push more jobs into.

    ``with pyq.current().batch:`` needs no hold on the batch: the running job is itself a member that
    has not finished, so the batch cannot complete before the block's jobs are members too.
    """

    def __init__(self, bid: str, redis: Any, keys: Keys) -> None:
        self.bid, self.redis, self.keys = bid, redis, keys
        self._tokens: list[contextvars.Token[str | None]] = []

    def __enter__(self) -> JoinedBatch:
        self._tokens.append(open_batch.set(self.bid))
        return self

    def __exit__(self, *exc: object) -> None:
        open_batch.reset(self._tokens.pop())

    def status(self) -> Any:
        """The batch's :class:`~pyq.batch_status.BatchStatus` now."""
        return read(self.redis, self.keys, self.bid)


def bid_of(job: dict[str, Any]) -> str | None:
    """The batch a job belongs to, or None (a payload without one, or with a malformed one)."""
    bid = job.get(BID_FIELD)
    return bid if isinstance(bid, str) and bid else None


def member(job: dict[str, Any], outcome: BatchOutcome) -> tuple[str, str, BatchOutcome] | None:
    """The (bid, jid, outcome) an ack or failure settles, for a job of a batch; None for any other job."""
    bid, jid = bid_of(job), job.get("jid")
    return (bid, jid, outcome) if bid and isinstance(jid, str) else None


class BatchCallback:
    """``pyq.current().batch_callback``: which batch, and which of its events, a callback job runs for."""

    def __init__(self, bid: str, event: str, redis: Any, keys: Keys) -> None:
        self.bid, self.event, self.redis, self.keys = bid, event, redis, keys

    def status(self) -> Any:
        """The batch's :class:`~pyq.batch_status.BatchStatus` now (its ``results()`` too)."""
        return read(self.redis, self.keys, self.bid)


def callback_of(job: dict[str, Any], redis: Any, keys: Keys) -> BatchCallback | None:
    """The batch event a callback job runs for, or None for any other job."""
    field = job.get(CALLBACK_FIELD)
    if not isinstance(field, dict) or not isinstance(field.get("bid"), str):
        return None
    return BatchCallback(field["bid"], str(field.get("event", "")), redis, keys)


def joined(job: dict[str, Any], redis: Any, keys: Keys) -> JoinedBatch | None:
    """The batch a running job belongs to, to push more jobs into; None for a job of no batch."""
    bid = bid_of(job)
    return JoinedBatch(bid, redis, keys) if bid else None
