"""Runs one fetched job and settles it (Sidekiq's processor).

Life of a job here:

1. ``prepare``: decode the raw payload (not a job -> dead set, wrapped so Ruby
   can show it), unwrap ActiveJob, resolve the class (unknown -> retry set,
   as Sidekiq does).
2. ``run`` / ``run_async``: the server middleware chain around the call.
3. Success -> :meth:`Acker.acknowledge` (batched, no round trip of its own).
   Exception -> :func:`retry.decide` and ``lua/fail.lua``. :class:`Shutdown`
   -> nothing: the job stays in flight and shutdown puts it back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from . import payload, retry
from .errors import InvalidPayload, Shutdown, UnknownJob
from .fetch import Acker, UnitOfWork, utc_day
from .job import JobDefinition, resolve
from .keys import STAT_DAY_TTL_S, Keys
from .scripts import Scripts

log = logging.getLogger("pyq.processor")
job_log = logging.getLogger("pyq.job")

#: Class name given to a payload that is not a job, when it is stored in the dead set.
POISON_CLASS = "pyq.InvalidPayload"


@dataclass
class JobContext:
    """What server middleware sees of the job it wraps."""

    job: dict[str, Any]
    raw: bytes
    queue: str
    definition: JobDefinition
    args: list[Any]
    kwargs: dict[str, Any]
    redis: Any
    keys: Keys
    unit: UnitOfWork = field(repr=False, default=None)  # type: ignore[assignment]


#: Server middleware: ``mw(ctx, call_next) -> result``; not calling call_next skips the job.
ServerMiddleware = Callable[[JobContext, Callable[[], Any]], Any]
#: Death handler: ``handler(job, exc)``, called after a job went to the dead set or was discarded.
DeathHandler = Callable[[dict[str, Any], BaseException], Any]


@dataclass(frozen=True)
class Settings:
    """The part of the config the processor needs."""

    max_retries: int = retry.DEFAULT_MAX_RETRIES
    dead_max_jobs: int = 10_000
    dead_timeout_s: int = 15_552_000
    time_style: payload.TimeStyle = "float"


class Processor:
    """Turns fetched units into finished, retried or dead jobs."""

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
        """Decode and resolve; a job that cannot even start is settled here and None returned."""
        try:
            job = payload.loads(unit.raw)
        except InvalidPayload as exc:
            self.bury_poison(unit, exc)
            return None
        try:
            if payload.is_activejob(job):
                name, args, kwargs = payload.unwrap_activejob(job)
            else:
                name, args, kwargs = job["class"], job["args"], {}
            definition = resolve(name)
        except (UnknownJob, InvalidPayload) as exc:
            log.error("cannot run job jid=%s class=%s: %s", job.get("jid"), job.get("class"), exc)
            self.fail(unit, job, exc)
            return None
        return JobContext(job, unit.raw, unit.queue, definition, args, kwargs, self.redis, self.keys, unit)

    # --- 2. run ------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        """Run a sync job in this thread and settle it."""
        started = time.monotonic()
        logging_on = job_log.isEnabledFor(logging.INFO)
        if logging_on:
            _log_job(ctx, "start")
        try:
            chain = self._chain(ctx)
            chain()
        except Shutdown:
            raise
        except (Exception, SystemExit) as exc:
            self._failed(ctx, exc, started)
        else:
            self.acker.acknowledge(ctx.raw)
            if logging_on:
                _log_job(ctx, "done", started)

    async def run_async(self, ctx: JobContext) -> None:
        """Run an ``async def`` job on the worker's event loop and settle it."""
        started = time.monotonic()
        logging_on = job_log.isEnabledFor(logging.INFO)
        if logging_on:
            _log_job(ctx, "start")
        try:
            result = self._chain(ctx)()
            if hasattr(result, "__await__"):
                await result
        except Shutdown:
            raise
        except (Exception, SystemExit) as exc:
            self._failed(ctx, exc, started)
        else:
            self.acker.acknowledge(ctx.raw)
            if logging_on:
                _log_job(ctx, "done", started)

    def _chain(self, ctx: JobContext) -> Callable[[], Any]:
        def call() -> Any:
            if ctx.definition.job_class is not None:
                instance = ctx.definition.job_class()
                instance.jid, instance.payload = ctx.job.get("jid"), ctx.job
                return instance.perform(*ctx.args, **ctx.kwargs)
            return ctx.definition.func(*ctx.args, **ctx.kwargs)

        middleware = self.middleware
        if "lock" in ctx.job:
            from . import unique

            middleware = [*middleware, unique.server_middleware]
        for mw in reversed(middleware):
            call = _bind(mw, ctx, call)
        return call

    # --- 3. settle failures -------------------------------------------------------------
    def _failed(self, ctx: JobContext, exc: BaseException, started: float) -> None:
        job_log.warning("%s jid=%s elapsed=%.3f fail: %s: %s", payload.display_class(ctx.job), ctx.job.get("jid"),
                        time.monotonic() - started, retry.error_class_name(exc), retry.error_message(exc)[:200])
        self.fail(ctx.unit, ctx.job, exc, ctx.definition)

    def fail(self, unit: UnitOfWork, job: dict[str, Any], exc: BaseException,
             definition: JobDefinition | None = None) -> None:
        """Store a failed job in the retry or dead set (or drop it) and count the failure."""
        s = self.settings
        decision = retry.decide(job, exc, unit.queue, max_retries=s.max_retries, time_style=s.time_style)
        self._store(unit.raw, decision.target, decision.score, decision.job)
        if decision.target != "retry":
            self._after_death(decision.job, exc)

    def bury_poison(self, unit: UnitOfWork, exc: InvalidPayload) -> None:
        """A payload that is not a job goes to the dead set, wrapped in a job Ruby's Web UI can show."""
        now_s = time.time()
        stamp = payload.timestamp(now_s, self.settings.time_style)
        wrapped = {"class": POISON_CLASS, "args": [], "queue": unit.queue, "jid": payload.new_jid(),
                   "retry": False, "created_at": stamp, "failed_at": stamp, "retry_count": 0,
                   "error_class": "pyq.errors.InvalidPayload", "error_message": str(exc),
                   "raw_payload": unit.raw.decode("utf-8", "backslashreplace")}
        log.error("poison payload from queue %s moved to the dead set as jid=%s: %s", unit.queue, wrapped["jid"], exc)
        self._store(unit.raw, "dead", now_s, wrapped)

    def _store(self, raw: bytes, target: str, score: float, job: dict[str, Any]) -> None:
        k, s, now_s = self.keys, self.settings, time.time()
        day = utc_day(now_s)
        keys = [k.inflight(self.identity), k.retry, k.dead, k.stat("processed"), k.stat("processed", day),
                k.stat("failed"), k.stat("failed", day)]
        args = [raw, target, repr(float(score)), payload.dumps(job), repr(now_s), s.dead_timeout_s, s.dead_max_jobs,
                STAT_DAY_TTL_S]
        for attempt in range(5):
            try:
                self.scripts.run("fail", keys, args)
                return
            except RedisError as exc:
                log.error("cannot store failed job jid=%s (attempt %d): %s", job.get("jid"), attempt + 1, exc)
                time.sleep(min(2.0, 0.2 * 2**attempt))
        log.error("failed job jid=%s stays in flight; it will be recovered and run again", job.get("jid"))

    def _after_death(self, job: dict[str, Any], exc: BaseException) -> None:
        if "lock" in job:
            from . import unique

            unique.on_death(self.redis, self.keys, job)
        for handler in self.death_handlers:
            try:
                handler(job, exc)
            except Exception:
                log.exception("death handler %r raised", handler)


def _bind(mw: ServerMiddleware, ctx: JobContext, call_next: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: mw(ctx, call_next)


def _log_job(ctx: JobContext, event: str, started: float | None = None) -> None:
    name, jid = payload.display_class(ctx.job), ctx.job.get("jid")
    if started is None:
        job_log.info("%s jid=%s start", name, jid)
    else:
        job_log.info("%s jid=%s elapsed=%.3f done", name, jid, time.monotonic() - started)
