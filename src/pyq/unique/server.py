"""Server side of unique jobs: locks released or taken around a run, per lock type; death and recovery."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from ..keys import Keys
from ..scripts import DeadLimits
from .client import delete_locks, reschedule, to_dead
from .lock import Lock, base_digest
from .options import (
    LOCK_TYPES,
    RUN_LOCK_MAX_WAIT_S,
    RUN_LOCK_MIN_WAIT_S,
    LockConflict,
    strategy,
)

log = logging.getLogger("pyq.unique")


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
    lock = Lock(ctx.redis, ctx.keys, ctx.job)
    lock.release()
    return _around(call_next, failed=lambda: lock.take())


def _until_executed(ctx: Any, call_next: Callable[[], Any], release: bool = True) -> Any:
    lock = Lock(ctx.redis, ctx.keys, ctx.job)
    if not lock.ensure():
        log.warning("skipping jid=%s: %s is held by another job", lock.jid, lock.digest)
        return None
    return _around(call_next, ok=lock.release if release else None)


def _until_expired(ctx: Any, call_next: Callable[[], Any]) -> Any:
    return _until_executed(ctx, call_next, release=False)


def _while_executing(ctx: Any, call_next: Callable[[], Any]) -> Any:
    run = Lock(ctx.redis, ctx.keys, ctx.job, ":RUN")
    wait_s = min(max(float(ctx.job.get("lock_timeout") or 0), RUN_LOCK_MIN_WAIT_S), RUN_LOCK_MAX_WAIT_S)
    if not run.acquire(wait_s):
        return _server_conflict(ctx, run.digest)
    return _around(call_next, always=run.release)


def _until_and_while_executing(ctx: Any, call_next: Callable[[], Any]) -> Any:
    lock = Lock(ctx.redis, ctx.keys, ctx.job)
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
        to_dead(ctx.keys, ctx.raw, ctx.dead or DeadLimits.default()).run(ctx.redis)
    elif chosen == "reschedule":
        reschedule(ctx.keys, ctx.job)[0].run(ctx.redis)
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
        delete_locks(redis, keys, base_digest(dig))


def release_for_recovery(redis: Any, keys: Keys, job: dict[str, Any]) -> None:
    """A killed worker's job goes back to its queue: free its runtime lock, and lock it again while it
    waits when its lock type holds a lock while queued (until_executing, until_and_while_executing)."""
    if not job.get("lock") or not job.get("lock_digest"):
        return
    kind = LOCK_TYPES.get(job["lock"])
    if kind in ("while_executing", "until_and_while_executing"):
        Lock(redis, keys, job, ":RUN").release()
    if kind in ("until_executing", "until_and_while_executing"):
        Lock(redis, keys, job).take()
