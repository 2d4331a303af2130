"""Unique jobs, compatible with sidekiq-unique-jobs v8: same digest, same Redis keys, same lock types.

Ruby and pyq share the gem's layout, so each side honours and releases the other's locks. For a
digest ``D`` (``uniquejobs:<hex>``): ``D`` holds the holder's jid, ``D:LOCKED`` maps jid -> lock time
and is what "locked" means, ``D:QUEUED`` receives a ``"1"`` token on release (for Ruby waiters),
``D:PRIMED``/``D:INFO`` are Ruby's; ``D:RUN...`` is the same family for runtime locks.

Life of a unique job:
1. :func:`prepare` adds ``lock_timeout``, ``lock_ttl``, ``lock_prefix``, ``lock_args``, ``lock_digest``.
2. :func:`push` takes the lock and stores the job in one script (``lua/lock_push.lua``); on a
   conflict the client strategy (``on_conflict``) decides: drop, raise, dead set, replace, reschedule.
3. :func:`server_middleware` releases or takes locks around the run, per lock type.
4. :func:`on_death` deletes every key of the digest; :func:`release_for_recovery` frees the runtime
   lock of a job whose worker was killed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import payload
from .errors import PyqError
from .job import JobDefinition, registered
from .keys import Keys
from .scripts import Scripts

log = logging.getLogger("pyq.unique")

#: The gem's default ``lock_prefix``.
PREFIX = "uniquejobs"
#: Seconds until a rescheduled duplicate runs (the gem's ``schedule_in`` default).
RESCHEDULE_IN_S = 5.0
#: Bounds in seconds of the wait for a runtime lock (the gem waits lock_timeout, at least 1, at most 5).
RUN_LOCK_MIN_WAIT_S = 1.0
RUN_LOCK_MAX_WAIT_S = 5.0
#: Every lock name the gem accepts -> the lock type it stands for.
LOCK_TYPES = {
    **dict.fromkeys(("until_executing", "while_enqueued"), "until_executing"),
    **dict.fromkeys(("until_executed", "until_completed", "until_performed", "until_processed",
                     "until_successfully_completed"), "until_executed"),
    "until_expired": "until_expired",
    **dict.fromkeys(("while_executing", "around_perform", "while_busy", "while_working",
                     "while_executing_reject"), "while_executing"),
    "until_and_while_executing": "until_and_while_executing",
}
STRATEGIES = ("log", "raise", "reject", "replace", "reschedule")


class LockConflict(PyqError):
    """Another job holds the lock of this digest (the ``raise`` conflict strategy)."""

    def __init__(self, digest: str, holder: str | None = None) -> None:
        super().__init__(f"unique job conflict: {digest} is locked" + (f" by jid {holder}" if holder else ""))
        self.digest, self.holder = digest, holder


# --- 1. digest -----------------------------------------------------------------------------
def digest(job: dict[str, Any], *, algorithm: str = "legacy") -> str:
    """The gem's lock digest: prefix + MD5 ("legacy") or SHA3-256 ("modern") of Ruby JSON of the sorted
    pairs of class, queue, lock_args (``args`` when absent) and apartment."""
    fields = {"class": job.get("class"), "queue": job.get("queue"), "lock_args": job.get("lock_args", job.get("args"))}
    if "apartment" in job:
        fields["apartment"] = job["apartment"]
    if job.get("unique_across_queues"):
        del fields["queue"]
    if job.get("unique_across_workers"):
        del fields["class"]
    text = ruby_json([[k, fields[k]] for k in sorted(fields)]).encode()
    if algorithm == "legacy":
        hexdigest = hashlib.md5(text, usedforsecurity=False).hexdigest()
    elif algorithm == "modern":
        hexdigest = hashlib.sha3_256(text).hexdigest()
    else:
        raise ValueError(f"unknown digest algorithm {algorithm!r}; expected 'legacy' or 'modern'")
    return f"{job.get('lock_prefix') or PREFIX}:{hexdigest}"


def ruby_json(value: Any) -> str:
    """Ruby's ``JSON.generate`` bytes, floats included (``1.0e+16``, ``1.0e-05``), for digests."""
    if isinstance(value, float):
        return ruby_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(ruby_json, value)) + "]"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"lock_args: hash key {key!r} is not a string")
        return "{" + ",".join(f"{ruby_json(k)}:{ruby_json(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (str, int)):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"lock_args: {type(value).__name__} is not JSON-native")


def ruby_float(x: float) -> str:
    """Ruby's ``Float#to_s``: shortest digits; fixed notation for 1e-4 <= |x| < 1e15, else d.de+XX."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"lock_args: {x!r} cannot be encoded as JSON")
    sign, text = ("-", repr(x)[1:]) if repr(x).startswith("-") else ("", repr(x))
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits, point = (whole + frac).lstrip("0"), len(whole) + int(exp or 0)
    point -= len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = digits.rstrip("0")
    if not digits:
        return sign + "0.0"
    if -4 < point <= 15:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{point - 1:+03d}"


# --- 2. client side ---------------------------------------------------------------------------
def lock_type(job: dict[str, Any]) -> str:
    """The canonical lock type of a job; ValueError naming the job for an unknown one."""
    kind = LOCK_TYPES.get(job.get("lock"))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError(f"job {job.get('class')!r}: unknown lock {job.get('lock')!r}; "
                         f"expected one of {', '.join(sorted(LOCK_TYPES))}")
    return kind


def strategy(job: dict[str, Any], side: str) -> str | None:
    """The ``on_conflict`` strategy for ``"client"`` or ``"server"`` (a hash may set each side)."""
    value = job.get("on_conflict")
    if isinstance(value, dict):
        value = value.get(side)
    if side == "server" and value is None and job.get("lock") == "while_executing_reject":
        value = "reject"
    if value is not None and value not in STRATEGIES:
        raise ValueError(f"job {job.get('class')!r}: unknown on_conflict {value!r}; "
                         f"expected one of {', '.join(STRATEGIES)}")
    return value


def prepare(job: dict[str, Any], definition: JobDefinition | None = None, *, at_s: float | None = None,
            now_s: float | None = None, algorithm: str = "legacy") -> dict[str, Any]:
    """Add the gem's lock fields to a payload (in place) and return it; bad options raise before any write."""
    lock_type(job)
    strategy(job, "client")
    definition = definition or registered().get(job.get("class"))  # type: ignore[arg-type]
    job["lock_timeout"] = job.get("lock_timeout") or 0
    job["lock_ttl"] = _lock_ttl(job, at_s, time.time() if now_s is None else now_s)
    job["lock_prefix"] = job.get("lock_prefix") or PREFIX
    job["lock_args"] = _lock_args(job, definition)
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


def _lock_args(job: dict[str, Any], definition: JobDefinition | None) -> list[Any]:
    method = definition.policy.get("lock_args") if definition else None
    if method is None:
        return list(job.get("args", []))
    result = method(json.loads(payload.dumps(job.get("args", []))))
    if not isinstance(result, (list, tuple)):
        raise TypeError(f"job {job.get('class')!r}: lock_args must return a list, got {type(result).__name__}")
    payload.check_json_native(list(result), "lock_args")
    return list(result)


def push(client: Any, job: dict[str, Any], at_s: float | None) -> str | None:
    """Prepare, lock and store one job for ``pyq.Client``; the jid, or None when it was not stored."""
    prepare(job, at_s=at_s)
    if lock_type(job) == "while_executing":
        client.scripts.run_many([client._store_call(job["queue"], at_s, [job])])
        return job["jid"]
    won, holder = _lock_and_push(client, job, at_s)
    return job["jid"] if won else _client_conflict(client, job, at_s, holder)


def _lock_and_push(client: Any, job: dict[str, Any], at_s: float | None) -> tuple[bool, str | None]:
    _, store_keys, store_args = client._store_call(job["queue"], at_s, [job])
    lock = _Lock(client.redis, client.keys, job)
    won, holder = lock.take(store_keys, store_args, score=repr(at_s) if at_s else "")
    return won, holder


def _client_conflict(client: Any, job: dict[str, Any], at_s: float | None, holder: str | None) -> str | None:
    chosen, dig = strategy(job, "client"), job["lock_digest"]
    if chosen == "raise":
        raise LockConflict(dig, holder)
    if chosen == "reject":
        _to_dead(client.redis, client.keys, payload.dumps(job))
    elif chosen == "reschedule":
        return _reschedule(client.redis, client.keys, job)
    elif chosen == "replace" and _delete_holder(client.redis, client.keys, dig, job["queue"]):
        delete_locks(client.redis, client.keys, dig, runtime=False)
        if _lock_and_push(client, job, at_s)[0]:
            return job["jid"]
    log.log(logging.INFO if chosen else logging.DEBUG, "skipping job jid=%s: %s is locked by %s (on_conflict=%s)",
            job.get("jid"), dig, holder, chosen)
    return None


def _to_dead(redis: Any, keys: Keys, raw: str | bytes) -> None:
    redis.zadd(keys.dead, {raw: time.time()})


def _reschedule(redis: Any, keys: Keys, job: dict[str, Any]) -> str:
    """Push a copy with a new jid ``RESCHEDULE_IN_S`` later, without a client lock (as the gem does)."""
    again = {k: v for k, v in job.items() if k != "enqueued_at"}
    again["jid"], queue = payload.new_jid(), job.get("queue") or "default"
    at_s = time.time() + RESCHEDULE_IN_S
    Scripts(redis).run("enqueue", (keys.queues, keys.queue(queue), keys.schedule, keys.wake(queue)),
                       (queue, repr(at_s), 0, payload.dumps(again)))
    return again["jid"]


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


# --- 3. server side -------------------------------------------------------------------------------
class _Lock:
    """One digest's lock, as held by one jid."""

    def __init__(self, redis: Any, keys: Keys, job: dict[str, Any], suffix: str = "") -> None:
        self.redis, self.keys, self.job, self.jid = redis, keys, job, job.get("jid") or ""
        self.digest = _base_digest(job["lock_digest"]) + suffix
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


def _base_digest(dig: str) -> str:
    return dig[: -len(":RUN")] if dig.endswith(":RUN") else dig


def _pttl_ms(job: dict[str, Any]) -> int:
    try:
        return max(0, int(float(job.get("lock_ttl") or 0))) * 1000
    except (TypeError, ValueError):
        return 0


def server_middleware(ctx: Any, call_next: Callable[[], Any]) -> Any:
    """Worker middleware: release/take the job's locks around its run, per its lock type."""
    job = ctx.job
    if not job.get("lock") or not job.get("lock_digest"):
        return call_next()
    kind = LOCK_TYPES.get(job["lock"])
    if kind is None:
        log.warning("jid=%s has unknown lock %r; running it without uniqueness", job.get("jid"), job["lock"])
        return call_next()
    return _SERVER[kind](ctx, call_next)


def _until_executing(ctx: Any, call_next: Callable[[], Any]) -> Any:
    lock = _Lock(ctx.redis, ctx.keys, ctx.job)
    lock.release()
    return _around(call_next, failed=lambda: lock.take())


def _until_executed(ctx: Any, call_next: Callable[[], Any], release: bool = True) -> Any:
    lock = _Lock(ctx.redis, ctx.keys, ctx.job)
    if not lock.ensure():
        log.warning("skipping jid=%s: %s is held by another job", lock.jid, lock.digest)
        return None
    return _around(call_next, ok=lock.release if release else None)


def _until_expired(ctx: Any, call_next: Callable[[], Any]) -> Any:
    return _until_executed(ctx, call_next, release=False)


def _while_executing(ctx: Any, call_next: Callable[[], Any]) -> Any:
    run = _Lock(ctx.redis, ctx.keys, ctx.job, ":RUN")
    wait_s = min(max(float(ctx.job.get("lock_timeout") or 0), RUN_LOCK_MIN_WAIT_S), RUN_LOCK_MAX_WAIT_S)
    if not run.acquire(wait_s):
        return _server_conflict(ctx, run.digest)
    return _around(call_next, always=run.release)


def _until_and_while_executing(ctx: Any, call_next: Callable[[], Any]) -> Any:
    lock = _Lock(ctx.redis, ctx.keys, ctx.job)
    if not lock.release():
        log.warning("skipping jid=%s: %s is held by another job", lock.jid, lock.digest)
        return None
    return _around(lambda: _while_executing(ctx, call_next), failed=lambda: lock.take())


_SERVER = {"until_executing": _until_executing, "until_executed": _until_executed, "until_expired": _until_expired,
           "while_executing": _while_executing, "until_and_while_executing": _until_and_while_executing}


def _server_conflict(ctx: Any, run_digest: str) -> None:
    chosen = strategy(ctx.job, "server")
    if chosen == "raise":
        raise LockConflict(run_digest)
    if chosen == "reject":
        _to_dead(ctx.redis, ctx.keys, ctx.raw)
    elif chosen == "reschedule":
        _reschedule(ctx.redis, ctx.keys, ctx.job)
    log.log(logging.INFO if chosen else logging.DEBUG, "jid=%s not run: %s is running (on_conflict=%s)",
            ctx.job.get("jid"), run_digest, chosen)


def _around(call_next: Callable[[], Any], ok: Callable[[], Any] | None = None,
            failed: Callable[[], Any] | None = None, always: Callable[[], Any] | None = None) -> Any:
    """Run call_next with hooks after success/failure; for ``async def`` jobs, after the awaited run."""
    try:
        result = call_next()
    except BaseException:
        _hooks(failed, always)
        raise
    if inspect.isawaitable(result):
        return _around_async(result, ok, failed, always)
    _hooks(ok, always)
    return result


async def _around_async(awaitable: Any, ok: Any, failed: Any, always: Any) -> Any:
    try:
        result = await awaitable
    except BaseException:
        _hooks(failed, always)
        raise
    _hooks(ok, always)
    return result


def _hooks(*hooks: Callable[[], Any] | None) -> None:
    for hook in hooks:
        if hook is not None:
            hook()


def on_death(redis: Any, keys: Keys, job: dict[str, Any]) -> None:
    """A job died or was discarded: delete both key families of its digest and its zset entries."""
    dig = job.get("lock_digest")
    if dig:
        delete_locks(redis, keys, _base_digest(dig))


def release_for_recovery(redis: Any, keys: Keys, job: dict[str, Any]) -> None:
    """A killed worker's job goes back to its queue: free its runtime lock, and lock it again while it
    waits when its lock type holds a lock while queued (until_executing, until_and_while_executing)."""
    if not job.get("lock") or not job.get("lock_digest"):
        return
    kind = LOCK_TYPES.get(job["lock"])
    if kind in ("while_executing", "until_and_while_executing"):
        _Lock(redis, keys, job, ":RUN").release()
    if kind in ("until_executing", "until_and_while_executing"):
        _Lock(redis, keys, job).take()
