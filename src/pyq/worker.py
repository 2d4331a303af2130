"""One worker process: one Sidekiq "process" identity running jobs with one concurrency budget.

Threads (all daemons; the main thread only waits and handles signals):

1. fetcher   -- keeps up to ``concurrency + prefetch`` jobs in flight, decodes
               them and, as slots free (``concurrency`` in all, sync and async),
               hands sync jobs to the executors, async jobs to the loop;
               when the queues are empty, blocks until a job is pushed (fetch.py).
2. executors -- up to ``concurrency`` threads running sync jobs, started as needed (runner.Runner).
3. loop      -- one asyncio event loop for ``async def`` jobs, started on first use (runner.Runner).
4. acker     -- batches acks of finished jobs (fetch.Acker).
5. heartbeat -- the process registry the Web UI reads, and remote signals.
6. poller    -- promotes due scheduled/retry jobs; recovers orphaned in-flight jobs.
7. cron      -- sidekiq-cron schedules (exactly once per tick across processes).

Stopping (TERM): stop fetching, put buffered jobs back, wait for running ones
until ``timeout``, then put every unfinished job back at the front of its
queue, interrupt the job threads, flush acks and deregister.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from redis.exceptions import RedisError

from . import client, connection, joblog, metrics, services, threads
from .cancel import CancelListener
from .config import Config
from .connection import connect
from .context import JobContext
from .errors import RET_STOPPED, RET_STUCK_JOB, Shutdown
from .fetch import Acker, Fetcher, QueueOrder, UnitOfWork
from .inflight import InFlight
from .keys import Keys
from .logs import Outage
from .processor import Processor, Settings, as_fetched
from .runner import Runner
from .timelimit import Watchdog

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
        self.redis = redis or connect(config.redis_url, cluster=config.cluster)
        self.keys = Keys(config.namespace, cluster=config.cluster)
        client.default_for_config(config)
        queues = [(q.name, q.weight) for q in config.queues]
        self.fetcher = Fetcher(self.redis, self.keys, identity, QueueOrder(queues))
        self.acker = Acker(self.redis, self.keys, identity)
        self.metrics = metrics.worker_metrics(config, self.redis, self.keys)
        self.stopping = threading.Event()      # no more fetching
        self.watchdog = Watchdog(config.timeout_grace_s, self._replace_for_stuck_job)
        self.cancels = CancelListener(self.redis, self.keys, self.watchdog.running)
        self.processor = Processor(self.redis, self.keys, identity, self.acker, Settings.from_config(config),
                                   middleware=self.metrics.middleware, stop_event=self.stopping,
                                   on_failure=self.metrics.on_failure, watchdog=self.watchdog,
                                   was_cancelled=self.cancels.was_cancelled)
        self.finished = threading.Event()      # shutdown complete
        self._quiet = threading.Event()
        self._hurry = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self.runner = Runner(self.processor, self.inflight, self._spawn)
        self._services_stop = threading.Event()
        self.started_at = time.time()
        self.exit_status = 0
        self._stop_requested_at: float | None = None
        self.heartbeat, self._loops = services.build(config, self.redis, self.keys, identity, self, self.started_at,
                                                     self.metrics.on_failure)

    # --- WorkerState, as the heartbeat sees it ---------------------------------------------
    @property
    def quiet(self) -> bool:
        return self._quiet.is_set()

    def busy_jobs(self) -> list[tuple[str, str, bytes, float]]:
        return self.runner.busy_jobs()

    def on_signal(self, signal: str) -> None:
        """A remote signal from ``IDENTITY-signals``: TSTP quiets, TERM stops for good, TTIN dumps thread stacks."""
        actions = {"TSTP": self.make_quiet, "TERM": self.stop_on_request, "INT": self.stop_on_request,
                   "TTIN": threads.dump_threads}
        actions.get(signal, lambda: None)()

    def make_quiet(self) -> None:
        if not self._quiet.is_set():
            log.info("quiet: finishing running jobs, fetching no new ones")
        self._quiet.set()

    def stop_on_request(self) -> None:
        """Stop as with TERM, exiting ``RET_STOPPED``: a Stop from the Web UI must not be answered by a replacement."""
        if self._stop_requested_at is None:
            log.info("stop requested through Redis: stopping for good")
        if self.exit_status == 0:
            self.exit_status = RET_STOPPED
        self.stop()

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
        for name, loop in [*self._loops, ("metrics", self.metrics.run), ("watchdog", self.watchdog.run),
                           ("cancels", self.cancels.run)]:
            self._spawn(name, loop, self._services_stop)
        try:  # registered before the first fetch, so no survivor takes our in-flight jobs for orphans
            self.heartbeat.beat()
        except RedisError as exc:
            log.error("first heartbeat failed (%s); the heartbeat thread keeps trying", exc)
        self._spawn("acker", self.acker.run, self.finished)
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
            try:
                self.fetcher.requeue(self.inflight.take_stale())  # waited too long here: a free slot elsewhere
                if room <= 0:
                    continue
                if outage.failing:
                    self.reclaim_lost_fetches()
                units = self.fetcher.retrieve_work(room) or self._idle_wait()
                outage.ok()
            except RedisError as exc:
                outage.failed(exc, 1.0)
                self.stopping.wait(1.0)
                continue
            if units and self.stopping.is_set():  # landed after the stop began (a push woke the idle wait)
                self.fetcher.put_back(units)
            elif units:
                self._dispatch(units)

    def _idle_wait(self) -> list[UnitOfWork]:
        """Nothing to fetch: block until a push, unless jobs wait here (they may need handing back soon)."""
        if self.inflight.waiting:
            self.inflight.wait_for_change(self.config.fetch_wait_s)
            return []
        return self.fetcher.take_when_pushed(self.config.fetch_wait_s)

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
        self.runner.start(self.inflight.admit(ready))

    # --- a job stuck past its time limit ----------------------------------------------------
    def _replace_for_stuck_job(self, ctx: JobContext) -> None:
        """Store the stuck job as a JobTimeout failure, hand the other jobs back, and exit to be replaced.

        A thread blocked in C cannot be stopped from Python; only the process can go. The stuck job
        leaves the in-flight list through ``fail.lua`` first and the others are put back, so the
        supervisor's recovery finds nothing: none of them is counted as a crash.
        """
        joblog.stuck(ctx, self.config.timeout_grace_s)
        error = ctx.timeout_error(f" and did not stop within {self.config.timeout_grace_s:g}s (blocked outside "
                                  "Python); its worker was replaced")
        try:
            self.processor.settler.fail(ctx.unit, as_fetched(ctx), error, ctx.definition, ctx.instance)
            self.acker.flush_or_log()
            self.fetcher.put_back([u for u in self.inflight.units() if u is not ctx.unit])
            self.metrics.flush()
        except Exception:
            log.exception("cannot settle the stuck job jid=%s; recovery puts it back", ctx.jid)
        finally:
            logging.shutdown()
            os._exit(RET_STUCK_JOB)

    # --- shutdown ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Sidekiq's stop: put back what did not start, wait until the deadline, put back the rest."""
        deadline = time.monotonic() + self.config.timeout_s
        self._quiet.set()
        self.stopping.set()
        self._join_fetcher()
        self.fetcher.put_back(self.runner.take_unstarted())
        self.inflight.wait_empty(deadline, self._hurry)
        self.runner.stop_executors()
        self._put_back_unfinished()
        self._services_stop.set()
        self.finished.set()
        self.acker.flush_or_log()
        self.metrics.flush()
        self._deregister()

    def _put_back_unfinished(self) -> None:
        """A hurried stop: jobs still running at the deadline (or on a second stop) go back; their threads stop."""
        unfinished = self.inflight.units()
        if not unfinished:
            return
        why = "stop requested again" if self._hurry.is_set() else f"past the {self.config.timeout_s:g}s timeout"
        log.warning("hurried stop (%s): %d job(s) still running go back to their queues", why, len(unfinished))
        self.acker.flush_or_log()
        self.fetcher.put_back(unfinished)
        executors = [t for t in self._threads.values() if t.name.startswith("pyq-executor")]
        threads.interrupt_jobs(executors, self.runner.loop, Shutdown, INTERRUPT_GRACE_S)

    def _join_fetcher(self) -> None:
        """Wait until the fetcher has left its loop, so that no fetch lands after the buffer is drained."""
        self.inflight.wake()
        fetcher = self._threads.get("fetcher")
        if fetcher is not None and fetcher is not threading.current_thread():
            fetcher.join(self.config.fetch_wait_s + connection.SOCKET_TIMEOUT_S)

    def _deregister(self) -> None:
        """Leave the process registry, and the in-flight owners when nothing of ours is left in flight.

        The heartbeat thread is waited for first: a beat that lands after the ``SREM`` would put this
        process back in ``processes`` until its hash expires, a dead entry for the Web UI to show.
        """
        heartbeat, fetcher = self._threads.get("heartbeat"), self._threads.get("fetcher")
        if heartbeat is not None and heartbeat is not threading.current_thread():
            heartbeat.join(connection.SOCKET_TIMEOUT_S)
        try:
            self.heartbeat.deregister()
            if fetcher is None or not fetcher.is_alive():  # a fetch still on its way could land later
                self.fetcher.release_ownership()
        except RedisError as exc:
            log.error("cannot deregister %s: %s", self.identity, exc)

