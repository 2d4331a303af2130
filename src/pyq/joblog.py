"""The log records a worker writes about each job: start, done, fail, the retry decision, jobs that cannot start.

Kept out of :mod:`pyq.processor` so that what an operator reads is decided in one place. Every
record carries the job as ``extra`` attributes (``jid``, ``job_class``, ``queue``, ``retry_count``,
``elapsed_ms``; see :mod:`pyq.logs`), never only inside the message text, so JSON logs can be
queried by jid. A failure is one WARN record with the traceback attached (``exc`` in JSON logs,
the usual multi-line text in text logs), as Sidekiq and Celery log it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .error_fields import error_class_name, error_message
from .errors import PyqError
from .logs import job_fields

if TYPE_CHECKING:
    from .context import JobContext
    from .retry import Decision

job_log = logging.getLogger("pyq.job")
log = logging.getLogger("pyq.processor")


def started(ctx: JobContext) -> float:
    """Log the start; returns the monotonic start time for :func:`done` / :func:`failed`."""
    if job_log.isEnabledFor(logging.INFO):
        job_log.info("start", extra=job_fields(ctx.job, ctx.queue))
    return time.monotonic()


def done(ctx: JobContext, started_s: float) -> None:
    if job_log.isEnabledFor(logging.INFO):
        job_log.info("done", extra=job_fields(ctx.job, ctx.queue, time.monotonic() - started_s))


def failed(ctx: JobContext, exc: BaseException, started_s: float) -> None:
    """One WARN record: the error in the message, its traceback attached."""
    job_log.warning("fail: %s: %s", error_class_name(exc), error_message(exc)[:200],
                    exc_info=(type(exc), exc, exc.__traceback__),
                    extra=job_fields(ctx.job, ctx.queue, time.monotonic() - started_s))


def interrupted(ctx: JobContext) -> None:
    job_log.warning("interrupted by the stop: it runs again from its queue", extra=job_fields(ctx.job, ctx.queue))


def requeued(ctx: JobContext, exc: BaseException, pushed: bool) -> None:
    """A job that put itself back on its queue (an interrupted iterable job)."""
    if pushed:
        job_log.info("requeued: %s", exc, extra=job_fields(ctx.job, ctx.queue))
    else:
        job_log.info("requeue skipped, no longer in flight: %s", exc, extra=job_fields(ctx.job, ctx.queue))


def decision(outcome: Decision, queue: str) -> None:
    """Where the failed job went: the retry set (when), the dead set, or nowhere."""
    job = outcome.job
    where = {"retry": f"retry_count={job.get('retry_count')}: runs again in {outcome.score - time.time():.0f}s",
             "dead": "moved to the dead set", "discard": "discarded"}[outcome.target]
    job_log.info("%s (%s)", where, job.get("error_class"), extra=job_fields(job, queue))


def cannot_run(job: dict[str, Any], queue: str, exc: BaseException) -> None:
    """A job that cannot start (unknown class, its module fails to import, bad arguments).

    pyq's own diagnoses (:class:`~pyq.errors.PyqError`) say everything in the message; anything
    else (an import that raised) gets its traceback, which points at the broken line.
    """
    trace = None if isinstance(exc, PyqError) else (type(exc), exc, exc.__traceback__)
    log.error("cannot run job: %s: %s", error_class_name(exc), error_message(exc), exc_info=trace,
              extra=job_fields(job, queue))


def poison(queue: str, wrapped: dict[str, Any], exc: BaseException) -> None:
    log.error("poison payload from queue %s moved to the dead set: %s", queue, exc, extra=job_fields(wrapped, queue))


def cancelled(ctx: JobContext, ran: bool) -> None:
    """A job cancelled with pyq.cancel: neither retried nor dead (the audit list keeps it)."""
    how = "stopped after pyq.cancel" if ran else "cancelled before it started"
    job_log.info("cancelled: %s", how, extra=job_fields(ctx.job, ctx.queue))


def stuck(ctx: JobContext, grace_s: float) -> None:
    job_log.error("still running %gs after its %gs time limit (blocked outside Python): stored as pyq.JobTimeout; "
                  "this worker process is replaced", grace_s, ctx.time_limit_s or 0,
                  extra=job_fields(ctx.job, ctx.queue))
