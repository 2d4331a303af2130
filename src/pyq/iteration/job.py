"""``pyq.IterableJob``: a class job that works through an enumerator one item at a time, and can stop and resume.

The same model as Sidekiq 7.3's ``Sidekiq::IterableJob``, on the same Redis state (:mod:`.state`):

- ``build_enumerator(*args, cursor=...)`` returns an iterable of ``(item, cursor)`` pairs that starts
  at ``cursor`` (None on the first run); ``each_iteration(item, *args)`` does the work of one item.
- Before each item the job checks whether to stop: the worker is stopping (a deploy), or this run
  has lasted longer than ``max_iteration_runtime`` seconds. It then saves the cursor and raises
  :class:`Interrupted`; the processor puts the job back on its queue, and the next run resumes at
  that item. The cursor is also saved every :data:`CHECKPOINT_INTERVAL_S` seconds, so a process
  killed outright resumes from there and only the items since then run twice.
- A job whose ``cancelled`` field is set (Ruby's ``cancel!``, ``pyq.cancel``) stops before its next
  item and calls ``on_cancel``; it is not retried. The field is read at every save and at most every
  :data:`CANCEL_POLL_S` seconds in between.
- An exception in ``each_iteration`` saves the cursor first: the retry resumes at the failed item.
- Hooks, as in Sidekiq: ``on_start`` (first run) or ``on_resume`` (later runs) before the first item,
  ``on_cancel``, then ``on_stop`` whenever a run ends, then ``on_complete`` once nothing is left (also
  after a cancel, as in Sidekiq: ``self.cancelled`` tells them apart).
- Progress (``pyq.progress(jid)``) is reported by itself: items done, of ``len(enumerator)`` when the
  enumerator knows its length.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from .. import context
from ..context import JobContext
from ..errors import Requeued
from ..job import Job
from ..job_progress import Reporter
from ..keys import Keys
from .state import IterationState, StateStore

log = logging.getLogger("pyq.iteration")

#: Seconds between two saves of the cursor while iterating (Sidekiq saves every 5).
CHECKPOINT_INTERVAL_S = 1.0
#: Seconds between two reads of the ``cancelled`` field between saves.
CANCEL_POLL_S = 0.1


class Interrupted(Requeued):
    """The job saved its cursor and goes back to its queue, to resume there (Sidekiq's ``Job::Interrupted``)."""


class IterableJob(Job):
    """Subclass, define ``build_enumerator`` and ``each_iteration``; never ``perform``.

    ``max_iteration_runtime`` (seconds, None = no limit) sends a run that lasted longer back to its
    queue after the current item, so that one long job does not hold a slot, or a deploy, for hours.
    """

    max_iteration_runtime: ClassVar[float | None] = None

    #: The cursor of the item being worked on (where a resume would start).
    cursor: Any = None
    #: Runs so far, this one included (Sidekiq's ``ex``).
    executions: int = 0
    #: True once the job saw that it was cancelled.
    cancelled: bool = False
    #: The item being worked on; kept after the loop, for the hooks.
    current_object: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "perform" in cls.__dict__:
            raise TypeError(f"{cls.__name__} is an iterable job: define build_enumerator and each_iteration, "
                            "not perform")
        limit = cls.max_iteration_runtime
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
            raise TypeError(f"{cls.__name__}.max_iteration_runtime must be seconds > 0 or None, got {limit!r}")
        super().__init_subclass__(**kwargs)

    @classmethod
    def _is_abstract(cls) -> bool:
        return getattr(cls.build_enumerator, "_abstract", False)

    @classmethod
    def _arguments_signature(cls) -> inspect.Signature:
        """The job's arguments are ``build_enumerator``'s, without ``self`` and ``cursor``."""
        signature = inspect.signature(cls.build_enumerator)
        params = [p for p in list(signature.parameters.values())[1:] if p.name != "cursor"]
        return signature.replace(parameters=params)

    # --- what a job defines ----------------------------------------------------------------
    def build_enumerator(self, *args: Any, cursor: Any) -> Iterable[tuple[Any, Any]] | None:
        """``(item, cursor)`` pairs starting at ``cursor``; None skips the job."""
        raise NotImplementedError(f"{type(self).__name__} must define build_enumerator")

    build_enumerator._abstract = True  # type: ignore[attr-defined]

    def each_iteration(self, item: Any, *args: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define each_iteration")

    def on_start(self) -> None:
        """Before the first item of the first run."""

    def on_resume(self) -> None:
        """Before the first item of every later run (after a stop, a kill or a retry)."""

    def on_stop(self) -> None:
        """At the end of every run, however it ended (but not on an exception)."""

    def on_cancel(self) -> None:
        """The job was cancelled; it stops here and is not retried."""

    def on_complete(self) -> None:
        """Nothing is left to do (the enumerator ran out, or the job was cancelled)."""

    # --- the driver ------------------------------------------------------------------------
    def perform(self, *args: Any) -> None:
        ctx = context.current()
        store = StateStore(ctx.redis if ctx else None, ctx.keys if ctx else Keys(), self.jid or "")
        state = store.load()
        state.executions += 1
        self.executions, self.cursor = state.executions, state.cursor
        enumerator = self.build_enumerator(*args, cursor=state.cursor)
        if enumerator is None:
            log.info("build_enumerator returned None: nothing to do")
            return
        try:
            pairs = iter(enumerator)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.build_enumerator must return an iterable of (item, cursor) "
                            f"pairs, got {type(enumerator).__name__}") from None
        run = _Run(self, ctx, store, state, _length(enumerator))
        if state.executions == 1:
            self.on_start()
        else:
            self.on_resume()
        why = run.iterate(pairs, args)
        self.on_stop()
        if why is not None:
            raise Interrupted(f"stopped at cursor {state.cursor!r}: {why}")
        self.on_complete()
        store.delete()
        run.report_final()


class _Run:
    """One execution's loop: the stop checks, the periodic saves and the progress reports."""

    def __init__(self, job: IterableJob, ctx: JobContext | None, store: StateStore, state: IterationState,
                 total: int | None) -> None:
        self.job = job
        self.ctx = ctx
        self.store = store
        self.state = state
        self.total = total
        self.started = time.monotonic()
        self.runtime_before_s = state.runtime_s
        self.reporter: Reporter | None = ctx.progress_reporter() if ctx is not None else None

    def iterate(self, pairs: Iterator[Any], args: tuple[Any, ...]) -> str | None:
        """Work through the items; None when done (or cancelled), else why it stopped early (cursor saved)."""
        job, state = self.job, self.state
        if state.cancelled:
            self._cancel()
            return None
        self._report()
        saved_at = polled_at = time.monotonic()
        for pair in pairs:
            item, state.cursor = _pair(pair)
            job.cursor, job.current_object = state.cursor, item
            now = time.monotonic()
            why = self._stop_reason(now)
            cancelled = self.ctx is not None and self.ctx.cancelled
            if why is not None or cancelled or now - saved_at >= CHECKPOINT_INTERVAL_S:
                cancelled = self._save(now) or cancelled
                saved_at = polled_at = now
            elif now - polled_at >= CANCEL_POLL_S:
                cancelled = self.store.cancelled()
                polled_at = now
            if cancelled:
                self._cancel()
                return None
            if why is not None:
                return why
            try:
                job.each_iteration(item, *args)
            except BaseException:
                self._save_after_error()
                raise
            state.done += 1
            self._report()
        return None

    def report_final(self) -> None:
        if self.reporter is not None:
            self.reporter.report(self.state.done, self.total if self.total is not None else self.state.done)
            self.reporter.flush()

    def _stop_reason(self, now: float) -> str | None:
        if self.ctx is not None and self.ctx.stopping:
            return "the worker is stopping"
        limit = self.job.max_iteration_runtime
        if limit is not None and now - self.started > limit:
            return f"this run lasted {now - self.started:.1f}s, over max_iteration_runtime {limit:g}s"
        return None

    def _save(self, now: float) -> bool:
        self.state.runtime_s = self.runtime_before_s + (now - self.started)
        return self.store.save(self.state)

    def _save_after_error(self) -> None:
        try:
            self._save(time.monotonic())
        except Exception as exc:
            log.warning("cannot save the cursor after an error (the retry resumes from the last save): %s", exc)

    def _cancel(self) -> None:
        self.job.cancelled = True
        log.info("cancelled at cursor %r", self.state.cursor)
        self.job.on_cancel()
        if self.reporter is not None:
            self.reporter.report(self.state.done)
            self.reporter.flush()

    def _report(self) -> None:
        if self.reporter is not None:
            self.reporter.report(self.state.done, self.total)


def _pair(pair: Any) -> tuple[Any, Any]:
    try:
        item, cursor = pair
    except (TypeError, ValueError):
        raise TypeError(f"an enumerator must yield (item, cursor) pairs, got {pair!r}") from None
    return item, cursor


def _length(enumerator: Any) -> int | None:
    """How many items the enumerator has in all, if it knows."""
    try:
        return len(enumerator)
    except TypeError:
        return None
