"""``pyq.Batch``: a group of jobs with callbacks for when they are all done (Sidekiq Pro's batches).

    with pyq.Batch("import 42", on_success=(Notify, [42])) as batch:
        process_chunk.perform_bulk([[c] for c in chunks])

Creating the batch (``lua/batch_open.lua``) stores its description, parent and callbacks, and holds it
open; each push inside the block makes its jobs members (``lua/batch_add.lua``) in the same transaction
that pushes them, and leaving the block releases the hold (``lua/batch_close.lua``), so the batch cannot
complete while jobs are still being added. From there the ack or failure of each member settles it, in
``ack.lua``, ``fail.lua`` and ``recover.lua`` (``lua/includes/batch.lua``), which also push the callbacks.

Callbacks are ordinary jobs: ``on_complete`` once every job has succeeded or failed at least once,
``on_success`` once every job has succeeded, ``on_death`` at the first job that dies. A callback job sees
its batch as ``pyq.current().batch_callback``. A batch created inside another (or inside a job of
another, within ``with pyq.current().batch:``) is its child: the parent waits for it and for its
callbacks.
"""

from __future__ import annotations

import contextvars
import secrets
import time
from datetime import timedelta
from typing import Any

from . import batch_scope, scripts
from .batch_scope import BID_FIELD, open_batch
from .batch_status import BatchStatus, NoSuchBatch, listing, read
from .client import Client, default_client
from .job import resolve, wire_name

#: The events a batch has callbacks for, as Sidekiq Pro names them.
EVENTS = ("complete", "success", "death")
#: The payload field a callback job carries: {"bid": ..., "event": ...}.
CALLBACK_FIELD = batch_scope.CALLBACK_FIELD


def new_bid() -> str:
    """A batch id like Sidekiq Pro's: 14 URL-safe characters."""
    return secrets.token_urlsafe(10)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Batch:
    """A batch of jobs: every job pushed inside ``with batch:`` belongs to it.

    ``on_complete``, ``on_success`` and ``on_death`` each take a job (a ``@pyq.job`` function, a
    ``pyq.Job`` class, or a class name for a Ruby job) or a ``(job, args)`` pair. ``callback_queue``
    sends every callback to one queue (else each goes to its job's queue). ``expires_in`` (seconds or a
    timedelta) is how long Redis keeps the batch; the default is the client's ``batch_expiry_s``.
    """

    def __init__(self, description: str = "", *, on_complete: Any = None, on_success: Any = None,
                 on_death: Any = None, callback_queue: str | None = None,
                 expires_in: float | timedelta | None = None, client: Client | None = None) -> None:
        self.bid = new_bid()
        self.description = str(description)
        self.callback_queue = callback_queue
        self.expires_in_s = None if expires_in is None else _seconds(expires_in)
        if self.expires_in_s is not None and self.expires_in_s <= 0:
            raise ValueError(f"Batch expires_in must be positive, got {expires_in!r}")
        self._callbacks = {event: spec for event, spec in zip(EVENTS, (on_complete, on_success, on_death),
                                                              strict=True) if spec is not None}
        self._client = client
        self._created = False
        self._tokens: list[contextvars.Token[str | None]] = []

    @classmethod
    def reopen(cls, bid: str, client: Client | None = None) -> Batch:
        """An existing batch, to push more jobs into with ``with``; it is held open meanwhile.

        Inside a job of the batch, ``with pyq.current().batch:`` does the same without the hold.
        """
        batch = cls(client=client)
        batch.bid, batch._created = bid, True
        return batch

    @property
    def client(self) -> Client:
        return self._client if self._client is not None else default_client()

    # --- pushing into it -------------------------------------------------------------------
    def __enter__(self) -> Batch:
        client = self.client
        now_s = time.time()
        if self._created:
            opened = client.store([scripts.batch_open(client.keys, self.bid, now_s=now_s, expires_at_s=0,
                                                      guard=True)])[0]
            if opened == -1:
                raise NoSuchBatch(f"no batch {self.bid!r} to reopen (never created, or expired)")
        else:
            parent = open_batch.get()
            expires_in_s = self.expires_in_s if self.expires_in_s is not None else client.batch_expiry_s
            client.store([scripts.batch_open(
                client.keys, self.bid, now_s=now_s, expires_at_s=now_s + expires_in_s, guard=True,
                description=self.description, parent=parent or "", time_style=client.time_style,
                callbacks=[self._callback(client, event, spec) for event, spec in self._callbacks.items()])])
            self._created = True
        self._tokens.append(open_batch.set(self.bid))
        return self

    def __exit__(self, *exc: object) -> None:
        """The hold goes even when the block raised: the jobs it pushed still run, and count."""
        open_batch.reset(self._tokens.pop())
        client = self.client
        client.store([scripts.batch_close(client.keys, self.bid, now_s=time.time())])

    def _callback(self, client: Client, event: str, spec: Any) -> tuple[str, str, str, str]:
        """(event, queue, jid, payload without enqueued_at) of one callback job."""
        target, args = spec if isinstance(spec, tuple) else (spec, [])
        if not isinstance(args, list):
            raise TypeError(f"Batch on_{event} args must be a list, got {type(args).__name__}")
        if isinstance(target, str):
            item: dict[str, Any] = {"class": target, "args": args}
        else:
            definition = resolve(wire_name(target))
            definition.check_call(args, {}, f"Batch on_{event}")
            item = definition.item(args, {})
        if self.callback_queue:
            item["queue"] = self.callback_queue
        item[CALLBACK_FIELD] = {"bid": self.bid, "event": event}
        item.pop("at", None)
        job = client.normalized(item)
        return event, job["queue"], job["jid"], client.encode([job], at_s=0.0)[0]

    # --- reading it --------------------------------------------------------------------------
    @staticmethod
    def status(bid: str, client: Client | None = None) -> BatchStatus:
        """Batch ``bid`` now: total, pending, failures, failed jids, created_at, complete and success."""
        client = client if client is not None else default_client()
        return read(client.redis, client.keys, bid)

    @staticmethod
    def list(client: Client | None = None, *, offset: int = 0, limit: int = 25) -> tuple[int, list[BatchStatus]]:
        """(how many batches there are, a page of them, newest first)."""
        client = client if client is not None else default_client()
        return listing(client.redis, client.keys, offset=offset, limit=limit)


__all__ = ["BID_FIELD", "CALLBACK_FIELD", "EVENTS", "Batch", "BatchStatus", "NoSuchBatch",
           "new_bid"]
