"""Runs one fetched job and settles it (Sidekiq's processor).

Life of a job here:

1. ``prepare``: decode the raw payload, unwrap ActiveJob, resolve the class,
   bind the arguments to the job's signature. What cannot start is settled
   at once and never kills the worker:

   - not a job (bad JSON, not an object, no ``class``/``args``, values JSON
     cannot carry back) -> dead set, wrapped in a job that keeps the raw text;
   - unknown class, or its module fails to import -> retry set, as Sidekiq
     (a deploy may bring the class);
   - a broken ActiveJob envelope, or args that do not fit the signature
     (:class:`ArgumentError`) -> dead set straight away: retrying the same
     arguments cannot help, and an admin can retry it from the dead set once
     the code accepts them. Binding happens before the call, so a TypeError
     raised inside the job is an ordinary failure.
2. ``run`` / ``run_async``: server middleware (global or the worker's), the
   unique-jobs lock middleware, then the job's own callbacks, around the call.
3. Success -> :meth:`Acker.acknowledge` (batched, no round trip of its own).
   Exception -> :class:`pyq.settle.Settler` (:func:`retry.decide`,
   ``lua/fail.lua``, then hooks). An exception caused by :class:`Shutdown` ->
   nothing: the job stays in flight and the worker's shutdown puts it back.
   :class:`Requeued` (an interrupted iterable job) -> back to its queue
   (``lua/reenqueue.lua``), neither acked nor failed.

While a job runs it is :func:`pyq.current` (a context variable, so per thread
and per asyncio task). Every stored failure, whether the job ran or could not
start, is reported to ``on_failure`` (the metrics plug in there), so what is
counted outside matches ``stat:failed``. What is logged is in :mod:`pyq.joblog`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from . import batch_scope, context, joblog, limiter, middleware, payload, results, scripts
from .context import Failure, JobContext
from .error_fields import caused_by_shutdown
from .errors import ArgumentError, InvalidPayload, JobTimeout, Requeued, Shutdown
from .fetch import Acker, UnitOfWork
from .job import JobDefinition, call_parts, resolve
from .keys import Keys
from .middleware import DeathHandler, ServerMiddleware
from .settle import FailureHook, Settings, Settler
from .timelimit import Watchdog

__all__ = ["ArgumentError", "DeathHandler", "Failure", "JobContext", "Processor", "ServerMiddleware", "Settings"]

log = logging.getLogger("pyq.processor")


class Processor:
    """Turns fetched units into finished, retried or dead jobs.

    ``middleware`` / ``death_handlers`` are this processor's own; the process-wide
    ones in :mod:`pyq.middleware` run too (first, outermost), read at each job.
    ``stop_event`` is what :attr:`JobContext.stopping` reads; ``on_failure`` hears of
    every failure stored.
    """

    def __init__(self, redis: Any, keys: Keys, identity: str, acker: Acker, settings: Settings,
                 middleware: list[ServerMiddleware] | None = None,
                 death_handlers: list[DeathHandler] | None = None, *,
                 stop_event: threading.Event | None = None, on_failure: FailureHook | None = None,
                 watchdog: Watchdog | None = None, was_cancelled: Callable[[str], bool] | None = None) -> None:
        self.redis = redis
        self.watchdog = watchdog  #: enforces time limits and knows the running jobs; None = no limits
        self.was_cancelled = was_cancelled  #: whether pyq.cancel named this jid before the job started
        self.keys = keys
        self.identity = identity
        self.acker = acker
        self.middleware = middleware if middleware is not None else []
        self.stop_event = stop_event
        self.settler = Settler(redis, keys, identity, settings, death_handlers if death_handlers is not None else [],
                               on_failure)

    # --- 1. prepare -----------------------------------------------------------------
    def prepare(self, unit: UnitOfWork) -> JobContext | None:
        """Decode, resolve and bind; a job that cannot start is settled here and None returned."""
        try:
            return self._prepare(unit)
        except Exception:  # never let one payload stop the fetcher
            log.exception("cannot settle a job from queue %s; it stays in flight until recovered", unit.queue)
            return None

    def _prepare(self, unit: UnitOfWork) -> JobContext | None:
        try:
            job = payload.loads(unit.raw)
        except Exception as exc:  # InvalidPayload, and RecursionError for absurdly nested JSON
            self.settler.bury_poison(unit, exc if isinstance(exc, InvalidPayload) else InvalidPayload(str(exc)))
            return None
        try:
            name, args, kwargs = call_parts(job)
        except InvalidPayload as exc:
            return self._cannot_start(unit, job, exc, kill=True, reason="bad_arguments")
        try:
            definition = resolve(name)
        except Exception as exc:  # UnknownJob, or the job's module raised while importing
            return self._cannot_start(unit, job, exc, reason="unknown_class")
        return self._bind(unit, job, definition, args, kwargs)

    def _bind(self, unit: UnitOfWork, job: dict[str, Any], definition: JobDefinition, args: list[Any],
              kwargs: dict[str, Any]) -> JobContext | None:
        try:
            definition.check_args(args, kwargs)
        except TypeError as exc:
            error = ArgumentError(f"{definition.name}{definition.signature} cannot take args {args!r}"
                                  f"{f' and kwargs {kwargs!r}' if kwargs else ''}: {exc}")
            return self._cannot_start(unit, job, error, definition, kill=True, reason="bad_arguments")
        try:
            instance = definition.instance()
        except Exception as exc:
            return self._cannot_start(unit, job, exc, definition)
        return JobContext(job, unit.raw, unit.queue, definition, args, kwargs, self.redis, self.keys, unit, instance,
                          self.stop_event, dead=self.settler.settings.dead,
                          time_limit_s=_time_limit_s(job, self.settler.settings.job_timeout_s),
                          batch=batch_scope.joined(job, self.redis, self.keys),
                          batch_callback=batch_scope.callback_of(job, self.redis, self.keys))

    def _cannot_start(self, unit: UnitOfWork, job: dict[str, Any], exc: BaseException,
                      definition: JobDefinition | None = None, *, kill: bool = False, reason: str = "error") -> None:
        """A job that cannot start: log why, and settle it as a failure that never ran."""
        joblog.cannot_run(job, unit.queue, exc)
        self.settler.fail(unit, job, exc, definition, kill=kill, reason=reason, ran=False)

    # --- 2. run ------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        """Run a sync job in this thread and settle it."""
        token = context.enter(ctx)
        started = joblog.started(ctx)
        returned: list[Any] = []  # what the job returned (a middleware need not pass it on)
        if self._cancelled_before_start(ctx):
            context.leave(token)
            return
        try:
            try:
                self._arm(ctx)
                middleware.sync_chain(self._chain(ctx), ctx, lambda: _kept(returned, _perform(ctx)))()
            finally:
                self._disarm(ctx)
        except Shutdown:
            self._put_back(ctx)
            raise
        except BaseException as exc:  # a job's own BaseException must not take the executor thread down
            self._settle_error(ctx, exc, started)
        else:
            self._succeeded(ctx, started, returned)
        finally:
            ctx.close()
            context.leave(token)

    async def run_async(self, ctx: JobContext) -> None:
        """Run an ``async def`` job on the worker's event loop and settle it (in its own task, so its own context)."""
        context.enter(ctx)
        started = joblog.started(ctx)
        returned: list[Any] = []
        if self._cancelled_before_start(ctx):
            return

        async def perform() -> Any:
            return _kept(returned, await _perform(ctx))

        try:
            try:
                self._arm(ctx, asyncio.current_task())
                await middleware.async_chain(self._chain(ctx), ctx, perform)()
            finally:
                self._disarm(ctx)
        except Shutdown:
            self._put_back(ctx)
            raise
        except asyncio.CancelledError as exc:
            if ctx.timed_out:  # the watchdog cancelled it at its time limit
                _uncancel()
                self._settle_error(ctx, _timeout_from(ctx, exc), started)
            elif _being_cancelled():
                raise  # the worker cancels its tasks at the shutdown deadline
            else:
                self._settle_error(ctx, exc, started)
        except BaseException as exc:
            self._settle_error(ctx, exc, started)
        else:
            self._succeeded(ctx, started, returned)
        finally:
            ctx.close()

    def _put_back(self, ctx: JobContext) -> None:
        """A job that stopped for the shutdown goes back to the front of its queue (if still in flight here).

        At the deadline the worker has already put it back, so this finds nothing; a job that stops
        earlier by itself (``raise_if_interrupted()``) is put back here, as it leaves its slot.
        """
        joblog.interrupted(ctx)
        try:
            scripts.requeue(self.keys, self.identity, pairs=[(ctx.unit.queue, ctx.raw)]).run(self.redis)
        except RedisError as exc:
            log.error("cannot put jid=%s back (%s); it stays in flight and will be recovered", ctx.jid, exc)

    # --- time limits and cancellation -------------------------------------------------------
    def _arm(self, ctx: JobContext, task: asyncio.Task[Any] | None = None) -> None:
        if self.watchdog is not None:
            self.watchdog.arm(ctx, task)

    def _disarm(self, ctx: JobContext) -> None:
        if self.watchdog is not None:
            self.watchdog.disarm(ctx)

    def _cancelled_before_start(self, ctx: JobContext) -> bool:
        """A job cancelled while it waited here for a slot is settled as cancelled without running."""
        if self.was_cancelled is None or not self.was_cancelled(ctx.jid):
            return False
        ctx.cancel_event.set()
        self._settle_cancelled(ctx, ran=False)
        return True

    def _settle_cancelled(self, ctx: JobContext, *, ran: bool) -> None:
        """Neither retried nor dead: it leaves the in-flight list like a finished job (pyq.cancel kept the audit);
        in a batch it counts as failed, since it will never succeed."""
        self.acker.acknowledge(ctx.raw, batch_member=batch_scope.member(ctx.job, "failed"))
        joblog.cancelled(ctx, ran)

    def _chain(self, ctx: JobContext) -> list[ServerMiddleware]:
        chain = [*middleware.server_middleware, *self.middleware]
        if "lock" in ctx.job:
            from . import unique

            chain.append(unique.server_middleware)
        chain += limiter.middleware_for(ctx.definition)
        before, after, around = (ctx.definition.hook(name, ctx.instance)
                                 for name in ("before_perform", "after_perform", "around_perform"))
        chain += middleware.job_callbacks(before, after, around, ctx.definition.is_async)
        return chain

    def _succeeded(self, ctx: JobContext, started: float, returned: list[Any]) -> None:
        ttl = results.ttl_s(ctx.job, ctx.definition)
        kept = (ctx.jid, ttl, results.encoded_value(ctx.job, returned[0] if returned else None)) if ttl else None
        self.acker.acknowledge(ctx.raw, kept, batch_scope.member(ctx.job, "succeeded"))
        joblog.done(ctx, started)

    def _settle_error(self, ctx: JobContext, exc: BaseException, started: float) -> None:
        if caused_by_shutdown(exc):
            self._put_back(ctx)
            return
        if ctx.cancelled:
            self._settle_cancelled(ctx, ran=True)
            return
        if isinstance(exc, Requeued):
            self._requeue(ctx, exc)
            return
        joblog.failed(ctx, exc, started)
        try:
            self.settler.fail(ctx.unit, as_fetched(ctx), exc, ctx.definition, ctx.instance)
        except Exception:
            log.exception("cannot settle failed job jid=%s; it stays in flight until recovered", ctx.job.get("jid"))

    def _requeue(self, ctx: JobContext, exc: Requeued) -> None:
        try:
            pushed = self.settler.requeue(ctx.unit, as_fetched(ctx), exc)
        except Exception:
            log.exception("cannot requeue jid=%s; it stays in flight until recovered", ctx.job.get("jid"))
            return
        joblog.requeued(ctx, exc, pushed)


# --- helpers ------------------------------------------------------------------------------


def _perform(ctx: JobContext) -> Any:
    return ctx.definition.invoke(ctx.instance, ctx.args, ctx.kwargs, job=ctx.job)


def _kept(returned: list[Any], value: Any) -> Any:
    returned.append(value)
    return value


def _time_limit_s(job: dict[str, Any], default_s: float | None) -> float | None:
    """The payload's ``timeout`` (it travels with the job, so retries and recovery keep it), else the default."""
    value = job.get("timeout")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default_s


def _timeout_from(ctx: JobContext, cancelled: BaseException) -> JobTimeout:
    error = ctx.timeout_error()
    error.__cause__ = cancelled
    return error


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


def as_fetched(ctx: JobContext) -> dict[str, Any]:
    """The job as fetched: Sidekiq stores failures without the edits middleware made."""
    try:
        return payload.loads(ctx.raw)
    except InvalidPayload:
        return ctx.job


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0
