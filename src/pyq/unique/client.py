"""Client side of unique jobs: lock fields at push, one-script lock-and-push, conflict strategies."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import payload, scripts
from ..keys import Keys
from ..scripts import Call, DeadLimits
from .digest import digest
from .lock import Lock, taken
from .options import (
    PREFIX,
    RESCHEDULE_IN_S,
    LockConflict,
    lock_type,
    strategy,
)

log = logging.getLogger("pyq.unique")

#: A wire name's ``lock_args`` method, or None. ``pyq/__init__.py`` installs the job registry's
#: lookup (the gem asks the worker class, by the pushed job's class name, after client middleware).
LockArgsLookup = Callable[[str], Callable[..., Any] | None]


def _no_jobs(name: str) -> Callable[..., Any] | None:
    return None


_lock_args_lookup: LockArgsLookup = _no_jobs


def set_lock_args_lookup(lookup: LockArgsLookup) -> None:
    """Where :func:`prepare` finds a job's ``lock_args`` method; the unique package never imports jobs."""
    global _lock_args_lookup
    _lock_args_lookup = lookup


def prepare(job: dict[str, Any], *, at_s: float | None = None, now_s: float | None = None,
            algorithm: str = "legacy") -> dict[str, Any]:
    """Add the gem's lock fields to a payload (in place) and return it; bad options raise before any write."""
    lock_type(job)
    strategy(job, "client")
    job["lock_timeout"] = job.get("lock_timeout") or 0
    job["lock_ttl"] = _lock_ttl(job, at_s, time.time() if now_s is None else now_s)
    job["lock_prefix"] = job.get("lock_prefix") or PREFIX
    job["lock_args"] = _lock_args(job, _lock_args_lookup(job.get("class")))
    job["lock_digest"] = digest(job, algorithm=algorithm)
    return job


def _lock_ttl(job: dict[str, Any], at_s: float | None, now_s: float) -> int | None:
    ttl = job.get("lock_ttl")
    if ttl is None:
        return None
    try:
        seconds = int(float(ttl))
    except (TypeError, ValueError):
        raise ValueError(f"job {job.get('class')!r}: lock_ttl must be seconds, got {ttl!r}") from None
    return seconds + (max(0, int(at_s) - int(now_s)) if at_s else 0)


def _lock_args(job: dict[str, Any], method: Callable[..., Any] | None) -> list[Any]:
    if method is None:
        return list(job.get("args", []))
    result = method(json.loads(payload.dumps(job.get("args", []))))
    if not isinstance(result, (list, tuple)):
        raise TypeError(f"job {job.get('class')!r}: lock_args must return a list, got {type(result).__name__}")
    payload.check_json_native(list(result), "lock_args")
    return list(result)


def push(client: Any, job: dict[str, Any], at_s: float | None) -> str | None:
    """Prepare, lock and store one job for ``pyq.Client``; the jid, or None when it was not stored.

    Every write goes through ``client.store`` (the one seam of a push), never to Redis directly.
    """
    prepare(job, at_s=at_s)
    if lock_type(job) == "while_executing":
        client.store([client.enqueue_call(job["queue"], at_s, [job])])
        return job["jid"]
    won, holder = _lock_and_push(client, job, at_s)
    return job["jid"] if won else _client_conflict(client, job, at_s, holder)


def _lock_and_push(client: Any, job: dict[str, Any], at_s: float | None) -> tuple[bool, str | None]:
    raw = client.encode([job], at_s)[0]
    return taken(client.store([Lock(client.redis, client.keys, job).take_call(raw, at_s)])[0])


def _client_conflict(client: Any, job: dict[str, Any], at_s: float | None, holder: str | None) -> str | None:
    chosen, dig = strategy(job, "client"), job["lock_digest"]
    if chosen == "raise":
        raise LockConflict(dig, holder)
    if chosen == "reject":
        client.store([to_dead(client.keys, payload.dumps(job), client.dead)])
    elif chosen == "reschedule":
        call, jid = reschedule(client.keys, job)
        client.store([call])
        return jid
    elif chosen == "replace" and _delete_holder(client.redis, client.keys, dig, job["queue"]):
        delete_locks(client.redis, client.keys, dig, runtime=False)
        if _lock_and_push(client, job, at_s)[0]:
            return job["jid"]
    log.log(logging.INFO if chosen else logging.DEBUG, "skipping job jid=%s: %s is locked by %s (on_conflict=%s)",
            job.get("jid"), dig, holder, chosen)
    return None


def to_dead(keys: Keys, raw: str | bytes, dead: DeadLimits) -> Call:
    """The ``reject`` strategy: the job goes to the dead set, trimmed like every other burial."""
    return scripts.kill(keys, job=raw, now_s=time.time(), dead=dead)


def reschedule(keys: Keys, job: dict[str, Any]) -> tuple[Call, str]:
    """A copy with a new jid ``RESCHEDULE_IN_S`` later, without a client lock (as the gem does); (call, jid)."""
    again = {k: v for k, v in job.items() if k != "enqueued_at"}
    again["jid"], queue = payload.new_jid(), job.get("queue") or "default"
    call = scripts.enqueue(keys, queue, at_s=time.time() + RESCHEDULE_IN_S, wake_cap=0, payloads=[payload.dumps(again)])
    return call, again["jid"]


def _delete_holder(redis: Any, keys: Keys, dig: str, queue: str) -> bytes | None:
    """Remove the queued, scheduled or retrying job carrying this digest (the ``replace`` strategy)."""
    for key, raws in ((keys.queue(queue), _list_items(redis, keys.queue(queue))),
                      (keys.schedule, (m for m, _ in redis.zscan_iter(keys.schedule, count=500))),
                      (keys.retry, (m for m, _ in redis.zscan_iter(keys.retry, count=500)))):
        for raw in raws:
            if dig.encode() in raw and _digest_of(raw) == dig:
                removed = redis.lrem(key, 1, raw) if key == keys.queue(queue) else redis.zrem(key, raw)
                if removed:
                    return raw
    return None


def _list_items(redis: Any, key: str, chunk: int = 500) -> Iterator[bytes]:
    start = 0
    while batch := redis.lrange(key, start, start + chunk - 1):
        yield from batch
        start += chunk


def _digest_of(raw: bytes) -> str | None:
    try:
        return json.loads(raw).get("lock_digest")
    except (ValueError, AttributeError):
        return None


def delete_locks(redis: Any, keys: Keys, dig: str, *, runtime: bool = True) -> None:
    """Delete a digest's keys (and its ``:RUN`` family) and its zset entries, atomically."""
    families = [dig, f"{dig}:RUN"] if runtime else [dig]
    names = [keys.unique(d, s) for d in families for s in ("", "QUEUED", "PRIMED", "LOCKED", "INFO")]
    pipe = redis.pipeline(transaction=True)
    pipe.delete(*names)
    for d in families:
        pipe.zrem(keys.unique_digests, keys.unique(d))
        pipe.zrem(keys.unique_expiring_digests, keys.unique(d))
    pipe.execute()
