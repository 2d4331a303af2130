"""One worker process: one Sidekiq "process" identity running jobs with one concurrency budget.

Threads (all daemons; the main thread only waits and handles signals):

1. fetcher   -- keeps up to ``concurrency + prefetch`` jobs in flight, decodes
               them and, as slots free (``concurrency`` in all, sync and async),
               hands sync jobs to the executors, async jobs to the loop;
               blocks on wake-up markers when the queues are empty.
2. executors -- ``concurrency`` threads running sync jobs.
3. loop      -- one asyncio event loop for ``async def`` jobs, started on first use.
4. acker     -- batches acks of finished jobs (fetch.Acker).
5. heartbeat -- the process registry the Web UI reads, and remote signals.
6. poller    -- promotes due scheduled/retry jobs; recovers orphaned in-flight jobs.
7. cron      -- sidekiq-cron schedules (exactly once per tick across processes).

Stopping (TERM): stop fetching, put buffered jobs back, wait for running ones
until ``timeout``, then put every unfinished job back at the front of its
queue, interrupt the job threads, flush acks and deregister.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from typing import Any

from redis.exceptions import RedisError

from . import connection, metrics, services, threads
from .config import Config
from .connection import connect
from .context import JobContext
from .errors import Shutdown
from .fetch import Acker, Fetcher, QueueOrder, UnitOfWork
from .inflight import InFlight
from .keys import Keys
from .logs import Outage
from .processor import Processor, Settings

log = logging.getLogger("pyq.worker")

#: Seconds a job thread gets to unwind after being interrupted at the deadline; its job is already back
#: on its queue, so this only bounds how long the exit waits (Sidekiq gives 3).
INTERRUPT_GRACE_S = 1.0


class Worker:
    """Runs jobs from the configured queues until stopped."""

    def __init__(self, config: Config, identity: str, redis: Any = None) -> None:
        self.config = config
        self.identity = identity
        self.concurrency = config.concurrency
        self.inflight = InFlight.for_pool(config.concurrency, config.prefetch)
        self.redis = redis or connect(config.redis_url)
        self.keys = Keys(config.namespace)
        queues = [(q.name, q.weight) for q in config.queues]
        self.fetcher = Fetcher(self.redis, self.keys, identity, QueueOrder(queues))
        self.acker = Acker(self.redis, self.keys, identity)
        self.metrics = metrics.worker_metrics(config, self.redis, self.keys)
        self.processor = Processor(self.redis, self.keys, identity, self.acker, Settings.from_config(config),
                                   middleware=self.metrics.middleware)
        self.stopping = threading.Event()      # no more fetching
        self.finished = threading.Event()      # shutdown complete
        self._quiet = threading.Event()
        self._hurry = threading.Event()
        self._buffer: queue.SimpleQueue[JobContext | None] = queue.SimpleQueue()
        self._busy: dict[str, tuple[str, bytes, float]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while async jobs run
        self._services_stop = threading.Event()
        self.started_at = time.time()
        self.exit_status = 0
        self._stop_requested_at: float | None = None
        self.heartbeat, self._loops = services.build(config, self.redis, self.keys, identity, self, self.started_at)

    # --- WorkerState, as the heartbeat sees it ---------------------------------------------
    @property
    def quiet(self) -> bool:
        return self._quiet.is_set()

    def busy_jobs(self) -> list[tuple[str, str, bytes, float]]:
        return [(tid, q, raw, at) for tid, (q, raw, at) in list(self._busy.items())]

    def on_signal(self, signal: str) -> None:
        """TSTP quiets, TERM stops, TTIN dumps thread stacks (from the Web UI or a process signal)."""
        if signal == "TSTP":
            self.make_quiet()
        elif signal in ("TERM", "INT"):
            self.stop()
        elif signal == "TTIN":
            threads.dump_threads()

    def make_quiet(self) -> None:
        if not self._quiet.is_set():
            log.info("quiet: finishing running jobs, fetching no new ones")
        self._quiet.set()

    def stop(self) -> None:
        """Begin a graceful stop; a second call hurries it (deadline now).

        A repeat within a second is the same request arriving twice (Ctrl-C reaches the whole
        process group and the supervisor forwards it too), not a second one.
        """
        now = time.monotonic()
        if self._stop_requested_at is not None and now - self._stop_requested_at > 1.0 and not self._hurry.is_set():
            log.info("stop requested again: hurrying")
            self._hurry.set()
        self._stop_requested_at = self._stop_requested_at or now
        self._quiet.set()
        self.stopping.set()
        self.inflight.wake()

    # --- run ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every thread; returns at once."""
        for name, loop in [*self._loops, ("metrics", self.metrics.run)]:
            self._spawn(name, loop, self._services_stop)
        try:  # registered before the first fetch, so no survivor takes our in-flight jobs for orphans
            self.heartbeat.beat()
        except RedisError as exc:
            log.error("first heartbeat failed (%s); the heartbeat thread keeps trying", exc)
        self._spawn("acker", self.acker.run, self.finished)
        for i in range(self.concurrency):
            self._spawn(f"executor-{i}", self._execute)
        self._spawn("fetcher", self._fetch_loop)

    def run(self, parent_pid: int | None = None) -> int:
        """Start, wait for a stop (or the parent's death), shut down; returns the exit status."""
        self.start()
        while not self.stopping.wait(0.5):
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("supervisor %d is gone: stopping", parent_pid)
                self.stop()
        self.shutdown()
        return self.exit_status

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except Shutdown:
                pass
            except BaseException:
                log.exception("thread %s crashed: stopping this worker so that it is replaced", name)
                self.exit_status = 1
                self.stop()

        thread = threading.Thread(target=guarded, name=f"pyq-{name}", daemon=True)
        self._threads[name] = thread
        thread.start()

    # --- fetcher thread ----------------------------------------------------------------------
    def _fetch_loop(self) -> None:
        outage = Outage(log, "fetcher")
        while not self.stopping.is_set():
            if self._quiet.is_set():
                self.stopping.wait(0.5)
                continue
            room = self.inflight.wait_for_room()
            if room <= 0:
                continue
            try:
                if outage.failing:
                    self.reclaim_lost_fetches()
                units = self.fetcher.retrieve_work(room) or self.fetcher.take_when_pushed(self.config.fetch_wait_s)
                outage.ok()
            except RedisError as exc:
                outage.failed(exc, 1.0)
                self.stopping.wait(1.0)
                continue
            if units:
                self._dispatch(units)

    def reclaim_lost_fetches(self) -> int:
        """After an outage, put back jobs a fetch moved into our in-flight list whose reply never arrived."""
        return self.fetcher.reclaim_lost({*self.inflight.raws(), *self.acker.pending_raws()})

    def _dispatch(self, units: list[UnitOfWork]) -> None:
        self.inflight.add(units)
        ready = []
        for unit in units:
            ctx = self.processor.prepare(unit)
            if ctx is None:
                self.inflight.done(unit)
            else:
                ready.append(ctx)
        self._start(self.inflight.admit(ready))

    def _start(self, contexts: list[JobContext]) -> None:
        """Hand jobs that hold a slot to an executor (sync) or the event loop (async)."""
        async_jobs = []
        for ctx in contexts:
            if ctx.definition.is_async:
                async_jobs.append(ctx)
            else:
                self._buffer.put(ctx)
        if async_jobs:  # one hand-off to the loop per batch, not one per job
            self._event_loop().call_soon_threadsafe(self._start_async, async_jobs)

    def _start_async(self, contexts: list[JobContext]) -> None:
        loop = asyncio.get_running_loop()
        for ctx in contexts:
            task = loop.create_task(self._run_async(ctx))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- executors --------------------------------------------------------------------------
    def _execute(self) -> None:
        tid = threads.thread_id()
        while True:
            ctx = self._buffer.get()
            if ctx is None:
                return
            self._busy[tid] = (ctx.queue, ctx.raw, time.time())
            try:
                self.processor.run(ctx)
            except Shutdown:
                return  # interrupted at the deadline: the job was put back
            finally:
                self._busy.pop(tid, None)
                self._start(self.inflight.finished(ctx))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._spawn("loop", self._loop.run_forever)
        return self._loop

    async def _run_async(self, ctx: JobContext) -> None:
        tid = f"a{id(ctx):x}"
        self._busy[tid] = (ctx.queue, ctx.raw, time.time())
        try:
            await self.processor.run_async(ctx)
        except (Shutdown, asyncio.CancelledError):
            pass
        finally:
            self._busy.pop(tid, None)
            self._start(self.inflight.finished(ctx))

    # --- shutdown ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Sidekiq's stop: put back what did not start, wait until the deadline, put back the rest."""
        deadline = time.monotonic() + self.config.timeout_s
        self._quiet.set()
        self.stopping.set()
        self._join_fetcher()
        self.fetcher.put_back(self._drain_buffer())
        self.inflight.wait_empty(deadline, self._hurry)
        for _ in range(self.concurrency):
            self._buffer.put(None)
        unfinished = self.inflight.units()
        if unfinished:
            log.warning("%d job(s) still running at the deadline: putting them back", len(unfinished))
            self.acker.flush_or_log()
            self.fetcher.put_back(unfinished)
            self._interrupt_jobs()
        self._services_stop.set()
        self.finished.set()
        self.acker.flush_or_log()
        self.metrics.flush()
        self._deregister()

    def _join_fetcher(self) -> None:
        """Wait until the fetcher has left its loop, so that no fetch lands after the buffer is drained."""
        self.inflight.wake()
        fetcher = self._threads.get("fetcher")
        if fetcher is not None and fetcher is not threading.current_thread():
            fetcher.join(self.config.fetch_wait_s + connection.SOCKET_TIMEOUT_S)

    def _drain_buffer(self) -> list[UnitOfWork]:
        """Jobs that have not started: those waiting for a slot, and those no executor has picked up."""
        units = self.inflight.take_waiting()
        while True:
            try:
                ctx = self._buffer.get_nowait()
            except queue.Empty:
                return units
            if ctx is not None:
                units.append(ctx.unit)
                self.inflight.finished(ctx)

    def _interrupt_jobs(self) -> None:
        executors = [t for t in self._threads.values() if t.name.startswith("pyq-executor")]
        if self._loop is not None:
            self._loop.call_soon_threadsafe(threads.cancel_all, self._loop)
        threads.interrupt(executors, Shutdown, INTERRUPT_GRACE_S)

    def _deregister(self) -> None:
        try:
            self.heartbeat.deregister()
        except RedisError as exc:
            log.error("cannot deregister %s: %s", self.identity, exc)

