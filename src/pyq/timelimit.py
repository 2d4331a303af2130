"""Per-job time limits, and the registry of running jobs that cancellation looks jobs up in.

One watchdog thread per worker keeps every running job with its deadline. At the limit it sets the
job's ``timeout_event`` and raises :class:`~pyq.errors.JobTimeout` in it: in its executor thread
(``PyThreadState_SetAsyncExc``, seen at the thread's next Python bytecode) or, for an async job, by
cancelling its task (the processor turns that cancellation into JobTimeout). A thread blocked in C
(``time.sleep``, a socket read) never reaches a bytecode, and a task blocking the loop never yields;
``grace_s`` later such a job is declared stuck and ``on_stuck`` replaces the process.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .context import JobContext
from .errors import JobTimeout

log = logging.getLogger("pyq.worker")


@dataclass
class _Running:
    ctx: JobContext
    thread_ident: int | None  #: the executor thread of a sync job
    task: asyncio.Task[None] | None  #: the task of an async job
    loop: asyncio.AbstractEventLoop | None
    deadline: float | None  #: monotonic seconds of the limit; None = no limit
    stuck_at: float | None = None  #: set at the limit: monotonic seconds after which the job is stuck
    injected: bool = False  #: JobTimeout was raised asynchronously in its thread


class Watchdog:
    """Running jobs by identity, their deadlines, and the thread that enforces them."""

    def __init__(self, grace_s: float, on_stuck: Callable[[JobContext], None]) -> None:
        self.grace_s = grace_s
        self._on_stuck = on_stuck
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._changed = threading.Event()

    # --- registry ---------------------------------------------------------------------------
    def arm(self, ctx: JobContext, task: asyncio.Task[None] | None = None) -> None:
        """Start watching ``ctx`` (call from its executor thread, or with its task for an async job)."""
        limit = ctx.time_limit_s
        deadline = None if limit is None else time.monotonic() + limit
        loop = task.get_loop() if task is not None else None
        entry = _Running(ctx, None if task is not None else threading.get_ident(), task, loop, deadline)
        with self._lock:
            self._running[id(ctx)] = entry
        if deadline is not None:
            self._changed.set()

    def disarm(self, ctx: JobContext) -> None:
        """The job ended: stop watching it, and drop a JobTimeout still pending in this thread."""
        with self._lock:
            entry = self._running.pop(id(ctx), None)
            if entry is not None and entry.injected and entry.thread_ident == threading.get_ident():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.thread_ident), None)

    def running(self, jid: str) -> list[JobContext]:
        """The running jobs with this jid (normally zero or one)."""
        with self._lock:
            return [e.ctx for e in self._running.values() if e.ctx.jid == jid]

    # --- the thread -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Enforce deadlines until ``stop`` is set."""
        while not stop.is_set():
            self._changed.wait(self._next_wait_s())
            self._changed.clear()
            for ctx in self._check(time.monotonic()):
                self._on_stuck(ctx)

    def _next_wait_s(self) -> float:
        with self._lock:
            times = [t for e in self._running.values() for t in (e.deadline if e.stuck_at is None else e.stuck_at,)
                     if t is not None]
        return 0.5 if not times else min(0.5, max(0.0, min(times) - time.monotonic()))

    def _check(self, now: float) -> list[JobContext]:
        """Interrupt jobs past their limit; return those still running past the grace."""
        stuck = []
        with self._lock:
            for entry in self._running.values():
                if entry.stuck_at is not None:
                    if now >= entry.stuck_at:
                        stuck.append(entry.ctx)
                        entry.stuck_at = float("inf")  # reported once
                elif entry.deadline is not None and now >= entry.deadline:
                    entry.stuck_at = now + self.grace_s
                    self._interrupt(entry)
        return stuck

    def _interrupt(self, entry: _Running) -> None:
        ctx = entry.ctx
        ctx.timeout_event.set()
        log.warning("job %s jid=%s passed its %gs time limit: interrupting it", ctx.name, ctx.jid, ctx.time_limit_s)
        if entry.task is not None and entry.loop is not None:
            entry.loop.call_soon_threadsafe(entry.task.cancel)
        elif entry.thread_ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.thread_ident), ctypes.py_object(JobTimeout))
            entry.injected = True
