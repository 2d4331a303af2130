"""Runs the jobs that hold a slot: sync ones on the executor threads, async ones on one event loop.

The worker decides what may run (:class:`~pyq.inflight.InFlight` hands out the slots); this module
only runs it, hands the freed slot to the next waiting job, and knows what is running now (the
heartbeat publishes that as ``IDENTITY:work``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable

from . import threads
from .context import JobContext
from .errors import JobTimeout, Shutdown
from .fetch import UnitOfWork
from .inflight import InFlight
from .processor import Processor

#: Starts a named daemon thread that stops the worker if it crashes (``Worker._spawn``).
Spawn = Callable[..., None]


class Runner:
    """The executors' hand-off queue, the event loop, and the running jobs.

    Executor threads are started as sync jobs need them, up to one per slot, so a pool of async jobs
    with ``concurrency: 1000`` does not keep a thousand idle threads (about 16 KB each).
    """

    def __init__(self, processor: Processor, inflight: InFlight, spawn: Spawn) -> None:
        self.processor = processor
        self.inflight = inflight
        self._spawn = spawn
        self._ready: queue.SimpleQueue[JobContext | None] = queue.SimpleQueue()
        self._executors = 0  #: executor threads started
        self._idle = 0       #: of those, waiting for a job
        self._queued = 0     #: sync jobs handed over and not yet taken
        self._count_lock = threading.Lock()
        self._busy: dict[str, tuple[str, bytes, float]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while async jobs run

    def busy_jobs(self) -> list[tuple[str, str, bytes, float]]:
        """(thread id, queue, payload, started at) of each running job."""
        return [(tid, q, raw, at) for tid, (q, raw, at) in list(self._busy.items())]

    def start(self, contexts: list[JobContext]) -> None:
        """Hand jobs that hold a slot to an executor (sync) or the event loop (async)."""
        async_jobs = []
        for ctx in contexts:
            if ctx.definition.is_async:
                async_jobs.append(ctx)
            else:
                self._hand_over(ctx)
        if async_jobs:  # one hand-off to the loop per batch, not one per job
            self._event_loop().call_soon_threadsafe(self._start_async, async_jobs)

    def execute(self) -> None:
        """An executor thread: run sync jobs until told to stop (None)."""
        tid = threads.thread_id()
        while True:
            ctx = self._take()
            if ctx is None:
                return
            self._busy[tid] = (ctx.queue, ctx.raw, time.time())
            try:
                self.processor.run(ctx)
            except Shutdown:
                return  # interrupted at the deadline: the job was put back
            except JobTimeout:  # the limit struck as the job was being settled: it was
                pass
            finally:
                self._busy.pop(tid, None)
                self.start(self.inflight.finished(ctx))

    def stop_executors(self) -> None:
        """Tell every executor thread to end once it is idle."""
        with self._count_lock:
            count = self._executors
        for _ in range(count):
            self._ready.put(None)

    def _hand_over(self, ctx: JobContext) -> None:
        """Queue a sync job for the executors, starting one more when none is idle for it."""
        with self._count_lock:
            self._queued += 1
            grow = self._queued > self._idle and self._executors < self.inflight.slots
            if grow:
                self._executors += 1
                name = f"executor-{self._executors - 1}"
        self._ready.put(ctx)
        if grow:
            self._spawn(name, self.execute)

    def _take(self) -> JobContext | None:
        with self._count_lock:
            self._idle += 1
        ctx = self._ready.get()
        with self._count_lock:
            self._idle -= 1
            if ctx is not None:
                self._queued -= 1
        return ctx

    def take_unstarted(self) -> list[UnitOfWork]:
        """Jobs that have not started: those waiting for a slot, and those no executor has picked up."""
        units = self.inflight.take_waiting()
        while True:
            try:
                ctx = self._ready.get_nowait()
            except queue.Empty:
                return units
            if ctx is not None:
                with self._count_lock:
                    self._queued -= 1
                units.append(ctx.unit)
                self.inflight.finished(ctx)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self._spawn("loop", self.loop.run_forever)
        return self.loop

    def _start_async(self, contexts: list[JobContext]) -> None:
        loop = asyncio.get_running_loop()
        for ctx in contexts:
            task = loop.create_task(self._run_async(ctx))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_async(self, ctx: JobContext) -> None:
        tid = f"a{id(ctx):x}"
        self._busy[tid] = (ctx.queue, ctx.raw, time.time())
        try:
            await self.processor.run_async(ctx)
        except (Shutdown, asyncio.CancelledError):
            pass
        finally:
            self._busy.pop(tid, None)
            self.start(self.inflight.finished(ctx))
