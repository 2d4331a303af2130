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
   Exception -> :func:`retry.decide` and ``lua/fail.lua``, then hooks. An
   exception caused by :class:`Shutdown` -> nothing: the job stays in flight
   and the worker's shutdown puts it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from . import middleware, payload, poison, retry
from .config import Config
from .context import JobContext
from .error_fields import caused_by_shutdown, error_class_name, error_message
from .errors import ArgumentError, InvalidPayload, Shutdown
from .fetch import Acker, UnitOfWork, utc_day
from .job import JobDefinition, call_hook, call_parts, resolve
from .keys import STAT_DAY_TTL_S, Keys
from .middleware import DeathHandler, ServerMiddleware
from .scripts import Scripts

__all__ = ["ArgumentError", "DeathHandler", "JobContext", "Processor", "ServerMiddleware", "Settings"]

log = logging.getLogger("pyq.processor")
job_log = logging.getLogger("pyq.job")


@dataclass(frozen=True)
class Settings:
    """The part of the config the processor needs; the defaults live in :class:`~pyq.config.Config`."""

    max_retries: int
    dead_max_jobs: int
    dead_timeout_s: int
    time_style: payload.TimeStyle

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        return cls(max_retries=config.max_retries, dead_max_jobs=config.dead_max_jobs,
                   dead_timeout_s=config.dead_timeout_s, time_style=config.time_style)


class Processor:
    """Turns fetched units into finished, retried or dead jobs.

    ``middleware`` / ``death_handlers`` are this processor's own; the process-wide
    ones in :mod:`pyq.middleware` run too (first, outermost), read at each job.
    """

    def __init__(self, redis: Any, keys: Keys, identity: str, acker: Acker, settings: Settings,
                 middleware: list[ServerMiddleware] | None = None,
                 death_handlers: list[DeathHandler] | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.identity = identity
        self.acker = acker
        self.settings = settings
        self.scripts = Scripts(redis)
        self.middleware = middleware if middleware is not None else []
        self.death_handlers = death_handlers if death_handlers is not None else []

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
            self.bury_poison(unit, exc if isinstance(exc, InvalidPayload) else InvalidPayload(str(exc)))
            return None
        try:
            name, args, kwargs = call_parts(job)
        except InvalidPayload as exc:
            log.error("cannot run job jid=%s class=%s: %s", job.get("jid"), job.get("class"), exc)
            self.fail(unit, job, exc, kill=True)
            return None
        try:
            definition = resolve(name)
        except Exception as exc:  # UnknownJob, or the job's module raised while importing
            log.error("cannot run job jid=%s class=%s: %s", job.get("jid"), name, error_message(exc))
            self.fail(unit, job, exc)
            return None
        return self._bind(unit, job, definition, args, kwargs)

    def _bind(self, unit: UnitOfWork, job: dict[str, Any], definition: JobDefinition, args: list[Any],
              kwargs: dict[str, Any]) -> JobContext | None:
        try:
            definition.check_args(args, kwargs)
        except TypeError as exc:
            error = ArgumentError(f"{definition.name}{definition.signature} cannot take args {args!r}"
                                  f"{f' and kwargs {kwargs!r}' if kwargs else ''}: {exc}")
            log.error("cannot run job jid=%s: %s", job.get("jid"), error)
            self.fail(unit, job, error, definition, kill=True)
            return None
        try:
            instance = definition.instance()
        except Exception as exc:
            self.fail(unit, job, exc, definition)
            return None
        return JobContext(job, unit.raw, unit.queue, definition, args, kwargs, self.redis, self.keys, unit, instance)

    # --- 2. run ------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        """Run a sync job in this thread and settle it."""
        started = _log_start(ctx)
        try:
            middleware.sync_chain(self._chain(ctx), ctx, lambda: _perform(ctx))()
        except Shutdown:
            raise
        except BaseException as exc:  # a job's own BaseException must not take the executor thread down
            self._settle_error(ctx, exc, started)
        else:
            self._succeeded(ctx, started)

    async def run_async(self, ctx: JobContext) -> None:
        """Run an ``async def`` job on the worker's event loop and settle it."""
        started = _log_start(ctx)

        async def perform() -> Any:
            return await _perform(ctx)

        try:
            await middleware.async_chain(self._chain(ctx), ctx, perform)()
        except Shutdown:
            raise
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise  # the worker cancels its tasks at the shutdown deadline
            self._settle_error(ctx, exc, started)
        except BaseException as exc:
            self._settle_error(ctx, exc, started)
        else:
            self._succeeded(ctx, started)

    def _chain(self, ctx: JobContext) -> list[ServerMiddleware]:
        chain = [*middleware.server_middleware, *self.middleware]
        if "lock" in ctx.job:
            from . import unique

            chain.append(unique.server_middleware)
        before, after, around = (ctx.definition.hook(name, ctx.instance)
                                 for name in ("before_perform", "after_perform", "around_perform"))
        chain += middleware.job_callbacks(before, after, around, ctx.definition.is_async)
        return chain

    def _succeeded(self, ctx: JobContext, started: float) -> None:
        self.acker.acknowledge(ctx.raw)
        if job_log.isEnabledFor(logging.INFO):
            job_log.info("%s jid=%s elapsed=%.3f done", payload.display_class(ctx.job), ctx.job.get("jid"),
                         time.monotonic() - started)

    def _settle_error(self, ctx: JobContext, exc: BaseException, started: float) -> None:
        if caused_by_shutdown(exc):
            job_log.warning("%s jid=%s interrupted by a hurried stop: it runs again from its queue",
                            payload.display_class(ctx.job), ctx.job.get("jid"))
            return
        job_log.warning("%s jid=%s elapsed=%.3f fail: %s: %s", payload.display_class(ctx.job), ctx.job.get("jid"),
                        time.monotonic() - started, error_class_name(exc), error_message(exc)[:200])
        try:
            self.fail(ctx.unit, _as_fetched(ctx), exc, ctx.definition, ctx.instance)
        except Exception:
            log.exception("cannot settle failed job jid=%s; it stays in flight until recovered", ctx.job.get("jid"))

    # --- 3. settle failures -------------------------------------------------------------
    def fail(self, unit: UnitOfWork, job: dict[str, Any], exc: BaseException,
             definition: JobDefinition | None = None, instance: Any = None, *, kill: bool = False) -> retry.Decision:
        """Store a failed job in the retry or dead set (or drop it), count the failure, run the hooks."""
        s = self.settings
        policy = definition.failure_policy(instance) if definition is not None else retry.NO_POLICY
        decision = retry.decide(job, exc, unit.queue, policy=policy, max_retries=s.max_retries,
                                time_style=s.time_style, kill=kill)
        self._store(unit.raw, decision.target, decision.score, decision.job)
        _log_decision(decision)
        if decision.target != "retry":
            after_discard = definition.hook("after_discard", instance) if definition is not None else None
            self._after_death(decision, exc, after_discard)
        return decision

    def bury_poison(self, unit: UnitOfWork, exc: InvalidPayload) -> None:
        """A payload that is not a job goes to the dead set, wrapped in a job Ruby's Web UI can show."""
        now_s = time.time()
        wrapped = poison.poison_job(unit.raw, unit.queue, exc, payload.timestamp(now_s, self.settings.time_style))
        log.error("poison payload from queue %s moved to the dead set as jid=%s: %s", unit.queue, wrapped["jid"], exc)
        self._store(unit.raw, "dead", now_s, wrapped)

    def _store(self, raw: bytes, target: str, score: float, job: dict[str, Any]) -> None:
        k, s, now_s = self.keys, self.settings, time.time()
        day = utc_day(now_s)
        keys = [k.inflight(self.identity), k.retry, k.dead, k.stat("processed"), k.stat("processed", day),
                k.stat("failed"), k.stat("failed", day)]
        stored = poison.encode_for_storage(raw, job, s.time_style)
        args = [raw, target, repr(float(score)), stored, repr(now_s), s.dead_timeout_s, s.dead_max_jobs, STAT_DAY_TTL_S]
        for attempt in range(5):
            try:
                self.scripts.run("fail", keys, args)
                return
            except RedisError as exc:
                log.error("cannot store failed job jid=%s (attempt %d): %s", job.get("jid"), attempt + 1, exc)
                time.sleep(min(2.0, 0.2 * 2**attempt))
        log.error("failed job jid=%s stays in flight; it will be recovered and run again", job.get("jid"))

    def _after_death(self, decision: retry.Decision, exc: BaseException,
                     after_discard: Callable[..., Any] | None) -> None:
        job = decision.job
        if "lock" in job:
            from . import unique

            unique.on_death(self.redis, self.keys, job)
        calls = [*middleware.death_handlers, *self.death_handlers] if decision.death else []
        if decision.target == "discard" and after_discard is not None:
            calls.append(after_discard)
        for handler in calls:
            try:
                call_hook(handler, job, exc)
            except Exception:
                log.exception("handler %r raised for jid=%s", handler, job.get("jid"))


# --- helpers ------------------------------------------------------------------------------


def _perform(ctx: JobContext) -> Any:
    return ctx.definition.invoke(ctx.instance, ctx.args, ctx.kwargs, job=ctx.job)


def _as_fetched(ctx: JobContext) -> dict[str, Any]:
    """The job as fetched: Sidekiq stores failures without the edits middleware made."""
    try:
        return payload.loads(ctx.raw)
    except InvalidPayload:
        return ctx.job


def _log_start(ctx: JobContext) -> float:
    if job_log.isEnabledFor(logging.INFO):
        job_log.info("%s jid=%s start", payload.display_class(ctx.job), ctx.job.get("jid"))
    return time.monotonic()


def _log_decision(decision: retry.Decision) -> None:
    job = decision.job
    where = {"retry": f"retry_count={job.get('retry_count')}: runs again in {decision.score - time.time():.0f}s",
             "dead": "moved to the dead set", "discard": "discarded"}[decision.target]
    job_log.info("%s jid=%s %s (%s)", payload.display_class(job), job.get("jid"), where, job.get("error_class"))


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0
