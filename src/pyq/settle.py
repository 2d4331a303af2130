"""Settles a job that failed or could not start: the retry/dead decision, ``lua/fail.lua``, the hooks.

Every path that counts a job in ``stat:failed`` goes through :class:`Settler`: a job that raised, one
that cannot start (unknown class, bad arguments), and a payload that is not a job (poison). Each
failure stored is reported to ``on_failure`` with its reason, so the metrics count what the stats count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from . import batch_scope, joblog, middleware, payload, poison, results, retry, scripts
from .config import Config
from .context import Failure
from .errors import InvalidPayload, Requeued, Rescheduled
from .fetch import UnitOfWork
from .job import JobDefinition, call_hook
from .keys import Keys
from .middleware import DeathHandler
from .scripts import DeadLimits

log = logging.getLogger("pyq.processor")
#: Called once for every job counted in ``stat:failed``.
FailureHook = Callable[[Failure], Any]


@dataclass(frozen=True)
class Settings:
    """The part of the config that settling failures needs; the defaults live in :class:`~pyq.config.Config`."""

    max_retries: int
    dead: DeadLimits
    time_style: payload.TimeStyle
    job_timeout_s: float | None = None  #: time limit of jobs whose payload sets none

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        return cls(max_retries=config.max_retries, dead=DeadLimits.of(config), time_style=config.time_style,
                   job_timeout_s=config.job_timeout_s)


@dataclass
class Settler:
    """Stores failed jobs in the retry or dead set for one worker identity; runs death hooks after."""

    redis: Any
    keys: Keys
    identity: str
    settings: Settings
    death_handlers: list[DeathHandler]
    on_failure: FailureHook | None = None

    def fail(self, unit: UnitOfWork, job: dict[str, Any], exc: BaseException,
             definition: JobDefinition | None = None, instance: Any = None, *, kill: bool = False,
             reason: str = "error", ran: bool = True) -> retry.Decision:
        """Store a failed job in the retry or dead set (or drop it), count the failure, run the hooks.

        ``reason`` and ``ran`` are what ``on_failure`` hears: why it failed, and whether the job started.
        """
        s = self.settings
        policy = definition.failure_policy(instance) if definition is not None else retry.NO_POLICY
        decision = retry.decide(job, exc, unit.queue, policy=policy, max_retries=s.max_retries,
                                time_style=s.time_style, kill=kill)
        if self._store(unit.raw, decision.target, decision.score, decision.job):
            self._report(Failure(unit.queue, payload.display_class(job), reason, ran))
            ttl = results.ttl_s(job, definition) if decision.target != "retry" else None
            if ttl:
                results.store_error(self.redis, self.keys, decision.job, exc, ttl)
        joblog.decision(decision, unit.queue)
        if decision.target != "retry":
            after_discard = definition.hook("after_discard", instance) if definition is not None else None
            self._after_death(decision, exc, after_discard)
        return decision

    def requeue(self, unit: UnitOfWork, job: dict[str, Any], exc: Requeued | None = None) -> bool:
        """Put a job that raised :class:`~pyq.errors.Requeued` back on its queue with a fresh ``enqueued_at``
        (a :class:`~pyq.errors.Rescheduled` one into the schedule set, ``delay_s`` from now).

        False when it was no longer in flight (a hurried stop or a recovery put it back already).
        """
        if isinstance(exc, Rescheduled):
            return self._reschedule(unit, job, exc)
        job = {**job, "enqueued_at": payload.timestamp(None, payload.time_style_of(job))}
        call = scripts.reenqueue(self.keys, self.identity, unit.queue, raw=unit.raw, payload=payload.dumps(job))
        return bool(call.run_retried(self.redis, attempts=5, what=f"requeue jid={job.get('jid')}"))

    def _reschedule(self, unit: UnitOfWork, job: dict[str, Any], exc: Rescheduled) -> bool:
        """Into the schedule set with ``overrated`` one higher (Sidekiq Enterprise's field), counted per limiter."""
        overrated = job.get("overrated")
        later = {**job, "overrated": (overrated if isinstance(overrated, int) else 0) + 1}
        call = scripts.reschedule(self.keys, self.identity, raw=unit.raw, payload=payload.dumps(later),
                                  at_s=time.time() + exc.delay_s, limiter=exc.reason)
        return bool(call.run_retried(self.redis, attempts=5, what=f"reschedule jid={job.get('jid')}"))

    def bury_poison(self, unit: UnitOfWork, exc: InvalidPayload) -> None:
        """A payload that is not a job goes to the dead set, wrapped in a job Ruby's Web UI can show."""
        now_s = time.time()
        wrapped = poison.poison_job(unit.raw, unit.queue, exc, payload.timestamp(now_s, self.settings.time_style))
        joblog.poison(unit.queue, wrapped, exc)
        if self._store(unit.raw, "dead", now_s, wrapped):
            self._report(Failure(unit.queue, poison.POISON_CLASS, "invalid_payload", False))

    def _report(self, failure: Failure) -> None:
        if self.on_failure is None:
            return
        try:
            self.on_failure(failure)
        except Exception:  # a metrics problem must not unsettle the job
            log.exception("on_failure hook raised for %s", failure)

    def _store(self, raw: bytes, target: str, score: float, job: dict[str, Any]) -> bool:
        """Run ``lua/fail.lua`` (retrying through short outages); False when the job stays in flight."""
        stored = poison.encode_for_storage(raw, job, self.settings.time_style)
        call = scripts.fail(self.keys, self.identity, raw=raw, target=target, score=score, job=stored,
                            now_s=time.time(), dead=self.settings.dead, bid=batch_scope.bid_of(job) or "",
                            jid=str(job.get("jid") or ""))
        try:
            call.run_retried(self.redis, attempts=5, what=f"store failed job jid={job.get('jid')}")
            return True
        except RedisError:
            log.error("failed job jid=%s stays in flight; it will be recovered and run again", job.get("jid"))
            return False

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
