"""Pushes Sidekiq job hashes: normalises them into payloads and stores them with one script call.

Jobs defined in Python build their hash in :mod:`pyq.job` (``JobDefinition.item``) and push it
here; a ``class`` given as a job object is read through its ``wire_name``.

A push follows Sidekiq's client: normalise the item (defaults, ``jid``,
``created_at``), run the client middleware, then either push to
``queue:NAME`` with a fresh ``enqueued_at`` or, when ``at`` lies in the
future, add it to ``schedule`` without ``at``/``enqueued_at``. Each batch is
one EVALSHA of ``lua/enqueue.lua``; a bulk push pipelines its chunks so that
the whole call costs one round trip.

Every push path (``push``, ``push_bulk``, scheduled or not, the unique-jobs lock
path) ends in one call of :meth:`Client.store` with the script calls to run. That
is the seam :mod:`pyq.testing` replaces (``Client(store=...)``) to record jobs
instead of writing them.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import middleware as _middleware
from . import payload, priority, scripts, unique
from .batch_scope import BID_FIELD, open_batch
from .config import Config
from .connection import connect
from .durable import Durability
from .keys import QUEUE_NAME_RULE, Keys, is_queue_name
from .scripts import WAKE_CAP, Call, DeadLimits

__all__ = ["BULK_CHUNK", "WAKE_CAP", "Client", "ClientMiddleware", "Store", "configure", "default_client",
           "override_default"]

#: Jobs per EVALSHA in a bulk push (Sidekiq's guidance for push_bulk is ~1000).
BULK_CHUNK = 1000
#: Fields Sidekiq never stores on a queued or scheduled job.
_REQUEST_ONLY = ("at", "wait", "wait_until", "client")

#: Client middleware: ``mw(job, call_next) -> job | None``; returning None stops the push.
ClientMiddleware = _middleware.ClientMiddleware
#: What a push ends in: script calls in, their results out (:meth:`Client.store`).
Store = Callable[[Sequence[Call]], list[Any]]


def default_url() -> str:
    """``PYQ_REDIS_URL``, then ``REDIS_URL``, else the local default."""
    return os.environ.get("PYQ_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://localhost:6379/0"


class Client:
    """Pushes jobs into one Redis (``pyq.Client(url).push({...})``)."""

    def __init__(self, url: str | None = None, *, namespace: str = "", cluster: bool = False,
                 time_style: payload.TimeStyle = "float", connection: Any = None,
                 middleware: Sequence[ClientMiddleware] | None = None,
                 dead: DeadLimits | None = None, store: Store | None = None,
                 batch_expiry_s: float = Config.batch_expiry_s, durable_enqueue: int = 0,
                 durable_enqueue_timeout_s: float = 1.0) -> None:
        self.url = url or default_url()
        self.redis = connection if connection is not None else connect(self.url, cluster=cluster)
        self.keys = Keys(namespace, cluster=cluster)
        self.time_style = time_style
        #: None = the process-wide chain (pyq.middleware.client_middleware), read at each push.
        self.middleware = list(middleware) if middleware is not None else None
        #: How the unique-jobs ``reject`` strategy trims the dead set (None = Config's defaults).
        self.dead = dead or DeadLimits.default()
        #: How long batches created through this client are kept (``pyq.Batch(expires_in=...)`` overrides it).
        self.batch_expiry_s = batch_expiry_s
        self._store_with = store
        #: ``durable_enqueue``: replicas that must hold a push before it returns (:mod:`pyq.durable`).
        self.durability = Durability(durable_enqueue, durable_enqueue_timeout_s)

    @classmethod
    def for_config(cls, config: Config, *, connection: Any = None) -> Client:
        """A client for a running pool: its Redis, namespace, time style and dead-set limits."""
        return cls(config.redis_url, namespace=config.namespace, cluster=config.cluster, time_style=config.time_style,
                   connection=connection, dead=DeadLimits.of(config), batch_expiry_s=config.batch_expiry_s,
                   durable_enqueue=config.durable_enqueue, durable_enqueue_timeout_s=config.durable_enqueue_timeout_s)

    @property
    def stores_in_redis(self) -> bool:
        """False for a client made with ``store=`` (:mod:`pyq.testing`'s modes), which keeps nothing in Redis."""
        return self._store_with is None

    def store(self, calls: Sequence[Call]) -> list[Any]:
        """The seam every push ends in: run the script calls in one round trip and return their results.

        A Redis error (e.g. WRONGTYPE) is raised, not dropped. A client made with ``store=`` hands the
        calls to it instead (``pyq.testing`` records the jobs they carry). With ``durable_enqueue`` the
        round trip ends in ``WAIT``, and too few replicas raise :class:`pyq.errors.NotDurable`.
        """
        if self._store_with is not None:
            return self._store_with(calls)
        wait = self.durability.command() if self.durability.on else ()
        results = scripts.run_many(self.redis, calls, then=wait)
        for result in results[:len(calls)]:
            if isinstance(result, Exception):
                raise result
        if wait:
            self.durability.check(results.pop())
        return results

    def normalized(self, item: dict[str, Any]) -> dict[str, Any]:
        """The job a push of ``item`` would store (defaults, jid, created_at, the open batch's bid), unpushed."""
        return self._normalize(item)[0]

    def encode(self, jobs: list[dict[str, Any]], at_s: float | None) -> list[str]:
        """The payloads to store: a fresh ``enqueued_at`` when pushed now, none when scheduled."""
        stamp = payload.timestamp(style=self.time_style) if at_s is None else None
        for job in jobs:
            if stamp is None:
                job.pop("enqueued_at", None)
            else:
                job["enqueued_at"] = stamp
        return [payload.dumps(job) for job in jobs]

    def enqueue_call(self, queue: str, at_s: float | None, jobs: list[dict[str, Any]]) -> Call:
        """The ``enqueue.lua`` call that pushes (or schedules) these jobs, all of one priority, on one queue."""
        level = priority.priority_of(jobs[0]) if jobs else 0
        return self._push_call(queue, at_s, level, self.encode(jobs, at_s), [job["jid"] for job in jobs])

    def _push_call(self, queue: str, at_s: float | None, level: int, payloads: list[str], jids: list[str]) -> Call:
        """``enqueue.lua``, or inside ``with pyq.Batch(...)`` ``batch_push.lua``, which makes the jobs members
        of the batch in the step that pushes them."""
        bid = open_batch.get()
        if bid is None:
            return scripts.enqueue(self.keys, queue, at_s=at_s, priority=level, payloads=payloads)
        return scripts.batch_push(self.keys, bid, queue, at_s=at_s, priority=level, jids=jids,
                                  payloads=payloads)

    # --- raw Sidekiq hashes ------------------------------------------------------
    def push(self, item: dict[str, Any]) -> str | None:
        """Push one Sidekiq job hash (``class`` may be a Ruby class name); returns its jid."""
        if not isinstance(item.get("args"), list):
            raise TypeError(f"job 'args' must be a list, got {type(item.get('args')).__name__}")
        job, at_s = self._normalize(item)
        job = self._run_middleware(job)
        if job is None:
            return None
        if job.get("lock"):  # sidekiq-unique-jobs: lock and push in one script
            return self._push_unique(job, at_s)
        self.store([self.enqueue_call(job["queue"], at_s, [job])])
        return job["jid"]

    def push_bulk(self, item: dict[str, Any], batch_size: int = BULK_CHUNK) -> list[str]:
        """Sidekiq's ``push_bulk``: ``args`` is a list of argument lists; ``at`` a time or a list of times.

        The jobs are stored in one round trip, ``batch_size`` jobs per script call.
        """
        args_list = item.get("args")
        if not isinstance(args_list, list) or not all(isinstance(a, list) for a in args_list):
            raise TypeError("push_bulk 'args' must be a list of argument lists")
        at = item.get("at")
        if isinstance(at, list) and len(at) != len(args_list):
            raise ValueError(f"push_bulk 'at' has {len(at)} times for {len(args_list)} jobs")
        base = {k: v for k, v in item.items() if k not in ("args", "at", "jid")}
        if not isinstance(at, list) and self._can_template(base):
            return self._push_templated({**base, **({"at": at} if at else {})}, args_list, batch_size)
        items = [{**base, "args": a, **({"at": at[i] if isinstance(at, list) else at} if at else {})}
                 for i, a in enumerate(args_list)]
        return self._push_many(items, batch_size)

    # --- internals ------------------------------------------------------------------
    def _can_template(self, item: dict[str, Any]) -> bool:
        """Bulk pushes share one encoded template unless middleware or a lock must see each job."""
        chain = self.middleware if self.middleware is not None else _middleware.client_middleware
        return not chain and not item.get("lock")

    def _push_templated(self, item: dict[str, Any], args_list: list[list[Any]], batch_size: int) -> list[str]:
        """Sidekiq's push_bulk: normalise once, then only ``args`` and ``jid`` differ per job.

        The shared fields are encoded once; each payload is that text with its own args and jid
        spliced in, so the bytes are exactly what encoding each job would give.
        """
        for i, args in enumerate(args_list):
            if not isinstance(args, list):
                raise TypeError(f"push_bulk 'args' must be a list of argument lists (item {i})")
            payload.check_json_native(args, f"args[{i}]")
        marker = f"pyq-{payload.new_jid()}"
        job, at_s = self._normalize({**item, "args": [], "jid": marker})
        job["args"] = marker + "a"
        if at_s is None:
            job["enqueued_at"] = payload.timestamp(style=self.time_style)
        head, rest = payload.dumps(job).split(f'"{marker}a"', 1)
        middle, tail = rest.split(f'"{marker}"', 1)
        jids = payload.new_jids(len(args_list))
        raws = [f'{head}{payload.dumps(args)}{middle}"{jid}"{tail}' for args, jid in zip(args_list, jids, strict=True)]
        level = priority.priority_of(job)
        self.store([self._push_call(job["queue"], at_s, level, raws[i:i + batch_size], jids[i:i + batch_size])
                    for i in range(0, len(raws), batch_size)])
        return jids

    def _push_many(self, items: Iterable[dict[str, Any]], batch_size: int = BULK_CHUNK) -> list[str]:
        groups: dict[tuple[str, float | None, int], list[dict[str, Any]]] = {}
        jids: list[str] = []
        for item in items:
            job, at_s = self._normalize(item)
            job = self._run_middleware(job)
            if job is None:
                continue
            if job.get("lock"):
                jid = self._push_unique(job, at_s)
                jids.extend([jid] if jid else [])
                continue
            groups.setdefault((job["queue"], at_s, priority.priority_of(job)), []).append(job)
            jids.append(job["jid"])
        calls = [self.enqueue_call(queue, at_s, jobs[i:i + batch_size])
                 for (queue, at_s, _), jobs in groups.items() for i in range(0, len(jobs), batch_size)]
        if calls:
            self.store(calls)
        return jids

    def _push_unique(self, job: dict[str, Any], at_s: float | None) -> str | None:
        """A job with a uniqueness lock; in a batch it is a member before the lock is tried, and is dropped
        again when the lock was taken and it was not pushed under its jid."""
        bid = open_batch.get()
        if bid is None:
            return unique.push(self, job, at_s)
        self.store([scripts.batch_add(self.keys, bid, jids=[job["jid"]])])
        pushed = None
        try:
            pushed = unique.push(self, job, at_s)
        finally:
            if pushed != job["jid"]:
                self.store([scripts.batch_forget(self.keys, bid, jids=[job["jid"]])])
        return pushed

    def _normalize(self, item: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """Sidekiq's normalize_item + validate: defaults, jid, created_at; the due time apart."""
        klass = item.get("class")
        if not isinstance(klass, str):  # a job definition or pyq.Job class carries its wire name
            klass = getattr(klass, "wire_name", klass)
        if not isinstance(klass, str) or not klass:
            raise TypeError(f"job 'class' must be a class name string, got {klass!r}")
        args = item.get("args", [])
        payload.check_json_native(args)
        queue = item.get("queue") or "default"
        at = _checked_fields(item, queue)
        job = {"class": klass, "args": list(args), "queue": queue, "retry": item.get("retry", True)}
        for key, value in item.items():
            if key not in job and key not in _REQUEST_ONLY:
                job[key] = list(value) if key == "tags" else value
        job["jid"] = item.get("jid") or payload.new_jid()
        priority.stamp_activejob(job)
        job.setdefault("created_at", payload.timestamp(style=self.time_style))
        bid = open_batch.get()
        if bid is not None:
            job[BID_FIELD] = bid
        return job, (float(at) if at is not None and at > time.time() else None)

    def _run_middleware(self, job: dict[str, Any]) -> dict[str, Any] | None:
        chain = self.middleware if self.middleware is not None else _middleware.client_middleware
        return _middleware.run_client_chain(chain, job) if chain else job


def _checked_fields(item: dict[str, Any], queue: str) -> Any:
    """Sidekiq's validate for ``queue``, ``retry_queue``, ``tags`` and ``at``; returns ``at``."""
    check_queue(queue, "queue")
    if item.get("retry_queue") is not None:
        check_queue(item["retry_queue"], "retry_queue")
    if "tags" in item and not isinstance(item["tags"], (list, tuple)):
        raise TypeError("job 'tags' must be a list of strings")
    at = item.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
        raise TypeError(f"job 'at' must be epoch seconds, got {type(at).__name__}")
    if at is not None and not math.isfinite(at):
        raise ValueError(f"job 'at' must be a finite time, got {at!r}")
    return at


def check_queue(name: Any, field: str) -> None:
    """Refuse a queue that no pyq worker would serve (:func:`pyq.keys.is_queue_name`, the config's rule)."""
    if not isinstance(name, str):
        raise TypeError(f"job {field!r} must be a string, got {type(name).__name__}")
    if not is_queue_name(name):
        raise ValueError(f"job {field!r} is {name!r}: a queue name is made of {QUEUE_NAME_RULE}, "
                         "the only names a pyq worker serves")


_default: tuple[int, Client] | None = None
_default_options: dict[str, Any] = {}


def configure(redis_url: str | None = None, **options: Any) -> Client:
    """Set the default client used by ``perform_async`` and friends in this process."""
    global _default
    _default_options.clear()
    _default_options.update(options, url=redis_url)
    _default = (os.getpid(), Client(redis_url, **options))
    return _default[1]


def default_client() -> Client:
    """The process's default client, made on first use (and again after a fork)."""
    global _default
    if _default is None or _default[0] != os.getpid():
        opts = dict(_default_options)
        _default = (os.getpid(), Client(opts.pop("url", None), **opts))
    return _default[1]


def default_for_config(config: Config) -> None:
    """In a worker process: jobs push through a client for the pool's config (its namespace, time style,
    batch expiry), unless the application called :func:`configure` itself."""
    global _default
    if not _default_options:
        _default = (os.getpid(), Client.for_config(config))


@contextmanager
def override_default(client: Client) -> Iterator[Client]:
    """``with override_default(c):`` -- ``perform_async`` and friends push through ``c`` inside the block."""
    global _default
    saved = _default
    _default = (os.getpid(), client)
    try:
        yield client
    finally:
        _default = saved
