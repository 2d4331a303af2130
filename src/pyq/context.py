"""What server middleware, a job's own callbacks and the job itself see of the running job.

Its own module so that :mod:`pyq.middleware` (which runs the chains), :mod:`pyq.processor`
(which builds the context) and :mod:`pyq.logs` (which stamps log lines with it) all depend on
it, and none on another. :func:`current` reads a :class:`~contextvars.ContextVar`, so each
executor thread and each asyncio task sees its own job.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import payload
from .errors import JobCancelled, JobTimeout, Shutdown

if TYPE_CHECKING:
    from .fetch import UnitOfWork
    from .job import JobDefinition
    from .job_progress import Reporter
    from .keys import Keys
    from .scripts import DeadLimits

log = logging.getLogger("pyq.progress")


@dataclass
class JobContext:
    """One running job: its payload, where it came from, its definition and bound arguments."""

    job: dict[str, Any]
    raw: bytes
    queue: str
    definition: JobDefinition
    args: list[Any]
    kwargs: dict[str, Any]
    redis: Any
    keys: Keys
    unit: UnitOfWork = field(repr=False, default=None)  # type: ignore[assignment]
    instance: Any = field(repr=False, default=None)  #: the pyq.Job instance of a class job
    stop_event: threading.Event | None = field(repr=False, default=None)  #: set once the worker stops
    dead: DeadLimits | None = field(repr=False, default=None)  #: the worker's dead-set trim; None = Config's
    _progress: Reporter | None = field(repr=False, default=None, init=False)
    time_limit_s: float | None = None  #: the job's ``timeout``, else the config's ``job_timeout``; None = no limit
    cancel_event: threading.Event = field(repr=False, default_factory=threading.Event)  #: set by pyq.cancel
    timeout_event: threading.Event = field(repr=False, default_factory=threading.Event)  #: set at the limit
    #: The batch this job belongs to (a ``pyq.batch_scope.JoinedBatch``; None if none):
    #: ``with pyq.current().batch:`` pushes more jobs into it.
    batch: Any = field(repr=False, default=None)
    #: For a batch's callback job, its batch and event (a ``pyq.batch_scope.BatchCallback``); else None.
    batch_callback: Any = field(repr=False, default=None)

    @property
    def jid(self) -> str:
        return str(self.job.get("jid", ""))

    @property
    def name(self) -> str:
        """The wire name the job runs under (the ActiveJob class for an ActiveJob payload)."""
        return self.definition.name

    @property
    def retry_count(self) -> int | None:
        """Sidekiq's ``retry_count``: None on the first run, 0 on the first retry, and so on."""
        count = self.job.get("retry_count")
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    @property
    def enqueued_at(self) -> float | None:
        """Epoch seconds the job last entered its queue (either payload time style)."""
        return payload.to_epoch_s(self.job.get("enqueued_at"))

    @property
    def created_at(self) -> float | None:
        """Epoch seconds the job was first pushed."""
        return payload.to_epoch_s(self.job.get("created_at"))

    @property
    def stopping(self) -> bool:
        """True once the worker is shutting down: a long job may save its place and return."""
        return self.stop_event is not None and self.stop_event.is_set()

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Report progress, readable with ``pyq.progress(jid)``; throttled, so calling it per item is cheap.

        ``total`` and ``message`` left None keep the values reported before.
        """
        self.progress_reporter().report(done, total, message)

    def progress_reporter(self) -> Reporter:
        """This job's progress reporter (made on first use: a job that reports nothing costs nothing)."""
        if self._progress is None:
            from .job_progress import Reporter

            self._progress = Reporter(self.redis, self.keys, self.jid)
        return self._progress

    def close(self) -> None:
        """The job ended: write the progress report that the throttle held back."""
        if self._progress is None:
            return
        try:
            self._progress.flush()
        except Exception as exc:  # a lost progress write must not unsettle a settled job
            log.warning("cannot write the last progress of jid=%s: %s", self.jid, exc)

    @property
    def cancelled(self) -> bool:
        """True once :func:`pyq.cancel` cancelled this job (a running worker hears of it within milliseconds)."""
        return self.cancel_event.is_set()

    @property
    def timed_out(self) -> bool:
        """True once the job ran past its time limit."""
        return self.timeout_event.is_set()

    @property
    def interrupted(self) -> bool:
        """True once the worker is stopping, the job is cancelled or its time limit passed: a loop should stop."""
        return self.timed_out or self.cancelled or self.stopping

    def timeout_error(self, detail: str = "") -> JobTimeout:
        """The JobTimeout this job ends with, worded the same wherever its limit is enforced."""
        return JobTimeout(f"{self.name} ran past its {self.time_limit_s or 0:g}s time limit{detail}")

    def raise_if_interrupted(self) -> None:
        """Raise why the job should stop: JobTimeout, JobCancelled, or Shutdown (the job is put back)."""
        if self.timed_out:
            raise self.timeout_error()
        if self.cancelled:
            raise JobCancelled(f"{self.name} jid={self.jid} was cancelled")
        if self.stopping:
            raise Shutdown("the worker is stopping")


#: Why a job counted in ``stat:failed``: it raised, it could not start (and why), or its workers kept dying.
REASONS = ("error", "unknown_class", "bad_arguments", "invalid_payload", "worker_crashed")


@dataclass(frozen=True)
class Failure:
    """One job counted in ``stat:failed``, as failure hooks (metrics) see it.

    ``ran`` is False when no run of it was counted as processed: it never started, or its worker died.
    """

    queue: str
    job_class: str
    reason: str  #: one of :data:`REASONS`
    ran: bool


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("pyq_current_job", default=None)


def current() -> JobContext | None:
    """The job running in this thread or asyncio task, or None outside a job."""
    return _current.get()


def enter(ctx: JobContext) -> contextvars.Token[JobContext | None]:
    """Make ``ctx`` the current job until :func:`leave` is called with the token."""
    return _current.set(ctx)


def leave(token: contextvars.Token[JobContext | None]) -> None:
    _current.reset(token)
