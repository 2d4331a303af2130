"""``pyq.cancel(jid)``: find a job wherever it is, take it out (or flag it while it runs), and keep an audit.

Where a job can be: a queue, the schedule or retry set, or a worker's in-flight list (running, or
fetched and waiting for a slot). Python finds the raw payload (``LRANGE`` / ``ZSCAN``); one
``lua/cancel.lua`` call then removes exactly that payload, so a job that moved meanwhile is looked
for again rather than lost. A running job gets Sidekiq 7.3's ``it-JID`` ``cancelled`` field (what
Ruby's ``Sidekiq::IterableJob#cancel!`` writes) and its jid on the ``pyq:cancel`` channel, which
every worker process listens on (:class:`CancelListener`), so the job's ``interrupted`` turns true
within a round trip.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import RedisError

from . import payload, scripts
from .keys import Keys
from .locate import locate
from .logs import Outage

log = logging.getLogger("pyq.cancel")

#: Where pyq.cancel found the job.
Where = Literal["queued", "scheduled", "retrying", "running", "unknown"]
_JID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Seconds a worker remembers a cancelled jid, for a job it fetched that has not started yet.
REMEMBER_S = 600.0
#: Seconds between attempts to subscribe again while Redis is away.
RESUBSCRIBE_EVERY_S = 1.0


def cancel(jid: str, client: Any = None, *, attempts: int = 3) -> Where:
    """Cancel job ``jid``; returns where it was. Queued, scheduled and retrying jobs never run.

    A running job is flagged: ``pyq.current().interrupted`` and ``cancelled`` turn true, and a job
    that stops (``raise_if_interrupted()``) is neither retried nor moved to the dead set.
    """
    if not isinstance(jid, str) or not _JID.fullmatch(jid):
        raise ValueError(f"not a job id: {jid!r} (letters, digits, _ and -)")
    client = _or_default(client)
    redis, keys = client.redis, client.keys
    audit_ttl_s = client.dead.timeout_s
    for _ in range(attempts):  # a job that moved between the look and the removal is looked for again
        found = _find(redis, keys, jid)
        if found is None:
            return "unknown"
        where, source_key, raw = found
        kind = {"queued": "list", "running": "running"}.get(where, "zset")
        if source_key.startswith(keys.prio("")):  # a queued job with a priority waits in a zset
            kind = "zset"
        now_s = time.time()
        call = scripts.cancel(keys, jid, source_key, kind=kind, member=raw, now_s=now_s, audit_ttl_s=audit_ttl_s,
                              entry=_entry(raw, where, now_s))
        if call.run(redis):
            log.info("cancelled jid=%s (%s)", jid, where)
            return where
    return "unknown"


@dataclass(frozen=True)
class Cancelled:
    """One audit entry: what was cancelled, where it was, and when."""

    jid: str
    job_class: str
    queue: str
    where: str
    cancelled_at: float


def cancelled_jobs(client: Any = None, limit: int = 100) -> list[Cancelled]:
    """The most recent cancellations (kept for ``dead_timeout``), newest first."""
    client = _or_default(client)
    rows = client.redis.zrevrange(client.keys.cancelled, 0, limit - 1)
    out = []
    for row in rows:
        try:
            entry = json.loads(row)
            out.append(Cancelled(str(entry["jid"]), str(entry["class"]), str(entry["queue"]), str(entry["where"]),
                                 float(entry["cancelled_at"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _or_default(client: Any) -> Any:
    """``client``, else the process's default client."""
    if client is not None:
        return client
    from .client import default_client

    return default_client()


def _entry(raw: bytes, where: str, now_s: float) -> str:
    job = payload.try_loads(raw) or {}
    return json.dumps({"jid": job.get("jid"), "class": payload.display_class(job) if job else "?",
                       "queue": job.get("queue"), "where": where, "cancelled_at": now_s}, separators=(",", ":"))


def _find(redis: Any, keys: Keys, jid: str) -> tuple[Where, str, bytes] | None:
    """(where, key, raw payload) of a job pyq can cancel: waiting, or running in a pyq process."""
    found = locate(redis, keys, jid)
    if found.place not in _CANCELLABLE or found.raw is None:  # ended (dead), unknown, or running in Ruby
        return None
    return found.place, found.key, found.raw  # type: ignore[return-value]


#: The places :func:`locate` names that a job can be cancelled from (the words JobHandle.status uses too).
_CANCELLABLE = ("queued", "scheduled", "retrying", "running")


class CancelListener:
    """A worker's subscription to ``pyq:cancel``: flags the running job, remembers jids it has not started.

    Pub/sub rather than polling: the job learns of the cancel within a round trip, and an idle worker
    costs Redis nothing. A message published while the connection was down is missed; the job's
    ``it-JID`` ``cancelled`` field stays for Sidekiq's 30 days for an iterable job to read.
    """

    def __init__(self, redis: Any, keys: Keys, running: Any) -> None:
        self.redis = redis
        self.keys = keys
        self._running = running  #: jid -> running JobContexts (the watchdog's registry)
        self._recent: dict[str, float] = {}
        self._lock = threading.Lock()

    def was_cancelled(self, jid: str) -> bool:
        with self._lock:
            return jid in self._recent

    def heard(self, jid: str) -> None:
        """A cancel for ``jid``: set its running job's cancelled flag and remember it for a while."""
        now = time.monotonic()
        with self._lock:
            self._recent[jid] = now
            for old in [j for j, at in self._recent.items() if now - at > REMEMBER_S]:
                del self._recent[old]
        for ctx in self._running(jid):
            ctx.cancel_event.set()
            log.info("job %s jid=%s cancelled while running: interrupted is now true", ctx.name, jid)

    def run(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set, resubscribing every second through an outage (logged once)."""
        outage = Outage(log, "cancel listener")
        while not stop.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.cancel_channel)
                outage.ok()
                for message in _messages(pubsub, stop):
                    data = message.get("data")
                    self.heard(data.decode() if isinstance(data, bytes) else str(data))
            except RedisError as exc:
                outage.failed(exc, RESUBSCRIBE_EVERY_S)
                stop.wait(RESUBSCRIBE_EVERY_S)
            finally:
                with contextlib.suppress(RedisError):
                    pubsub.close()


def _messages(pubsub: Any, stop: threading.Event) -> Iterator[dict[str, Any]]:
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.5)
        if message is not None and message.get("type") == "message":
            yield message
