"""The supervisor: forks worker processes, watches them, forwards signals.

What a child's death triggers: its in-flight jobs go back to their queues at
once (``scheduler.recover_process``, unconditionally: we saw it die), then a
new child is forked: at once when the dead one had registered (it was
working), after a backoff that doubles when it died before registering (it
crashes while starting, e.g. a failing import or no Redis).

A child that exits with ``RET_STOPPED`` was stopped on request (Sidekiq's Web
UI Stop, ``pyq processes stop``) and put its jobs back itself: it is not
replaced, and once every slot is stopped so, the supervisor exits 0.

Signals: TERM/INT stop (children finish or put back their jobs within
``timeout``; a second TERM hurries them); TSTP quiets; TTIN makes every
child dump its thread stacks. The supervisor stays single-threaded so that
forking is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass, field

from . import tracing
from .config import Config
from .connection import connect
from .errors import RET_STOPPED
from .heartbeat import hostname
from .keys import Keys
from .metrics.server import PoolMetrics
from .scheduler import recover_process
from .scripts import DeadLimits

log = logging.getLogger("pyq.supervisor")

#: Longest wait before re-forking a slot whose children keep dying.
MAX_BACKOFF_S = 30.0
#: Seconds beyond ``timeout`` the supervisor waits for children before killing them.
EXIT_GRACE_S = 5.0

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGTSTP, signal.SIGTTIN)


@dataclass
class Slot:
    """One worker position in the pool and its current child."""

    index: int
    pid: int = 0
    identity: str = ""
    backoff_s: float = 0.0
    respawn_at: float = field(default=0.0)
    stopped: bool = False  #: stopped on request: never forked again


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.keys = Keys(config.namespace, cluster=config.cluster)
        self.slots = [Slot(i) for i in range(config.processes)]
        self.stopping = False
        self._stop_at = 0.0
        self._pending: list[int] = []
        self.metrics = PoolMetrics(config)

    # --- lifecycle ------------------------------------------------------------------
    def run(self) -> int:
        """Fork the pool and watch it until a stop signal; returns the exit status."""
        for sig in _FORWARDED:
            signal.signal(sig, self._on_signal)
        log.info("pyq starting %d process(es) x %d threads, queues %s, redis %s", len(self.slots),
                 self.config.concurrency, ",".join(self.config.queue_names()), self.config.redacted_url())
        self.metrics.start()  # before the first worker fork: sets the multiprocess directory they inherit
        for slot in self.slots:
            self._fork(slot)
        deadline: float | None = None
        while any(slot.pid for slot in self.slots) or not self.stopping:
            self._handle_signals()
            if self.stopping and deadline is None:
                deadline = time.monotonic() + self.config.timeout_s + EXIT_GRACE_S
            self._reap()
            if deadline is not None and time.monotonic() > deadline:
                self._kill_remaining()
            elif not self.stopping:
                self._respawn_due()
            time.sleep(0.05)
        self.metrics.stop()
        log.info("pyq stopped")
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._pending.append(signum)

    def _handle_signals(self) -> None:
        while self._pending:
            signum = self._pending.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                if not self.stopping:
                    log.info("stopping: workers finish running jobs for up to %ss", self.config.timeout_s)
                    self.stopping, self._stop_at = True, time.monotonic()
                elif time.monotonic() - self._stop_at < 1.0:
                    continue  # the same request delivered twice (e.g. to the whole process group)
                else:
                    log.info("second stop signal: hurrying the workers")
                signum = signal.SIGTERM
            self._signal_children(signum)

    def _signal_children(self, signum: int) -> None:
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signum)

    # --- children -----------------------------------------------------------------------
    def _fork(self, slot: Slot) -> None:
        host, nonce = self.config.hostname or hostname(), secrets.token_hex(6)
        parent = os.getpid()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = _child_main(self.config, f"{host}:{os.getpid()}:{nonce}", parent, old_mask)
            except BaseException:
                log.exception("worker %d stopped on an unexpected error", slot.index)
            finally:
                logging.shutdown()
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        slot.pid, slot.identity = pid, f"{host}:{pid}:{nonce}"
        log.info("worker %d started: pid %d, identity %s", slot.index, pid, slot.identity)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.metrics.child_exited(pid, self.stopping):
                continue
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is not None:
                self._child_exited(slot, status)

    def _child_exited(self, slot: Slot, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        slot.pid = 0
        if code == RET_STOPPED:
            self._stopped_on_request(slot)
            return
        if self.stopping and code == 0:
            return
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        log.error("worker %d (%s) %s: recovering its jobs", slot.index, slot.identity, how)
        had_started = self._recover(slot.identity)
        if self.stopping:
            return
        # A worker that registered (it beats once before its first fetch) was killed while working:
        # replace it at once. One that died before registering crashed while starting: back off.
        slot.backoff_s = 0.0 if had_started else min(MAX_BACKOFF_S, max(0.5, slot.backoff_s * 2))
        slot.respawn_at = time.monotonic() + slot.backoff_s
        if slot.backoff_s:
            log.warning("worker %d restarts in %.1fs", slot.index, slot.backoff_s)

    def _stopped_on_request(self, slot: Slot) -> None:
        """A worker told to stop through Redis: leave its slot empty; with every slot empty, stop the pool."""
        slot.stopped = True
        log.info("worker %d (%s) stopped on request", slot.index, slot.identity)
        if not self.stopping and all(s.stopped for s in self.slots):
            log.info("every worker was stopped on request: pyq stopping")
            self.stopping, self._stop_at = True, time.monotonic()

    def _recover(self, identity: str) -> bool:
        """Put a dead worker's jobs back; True if it had registered (finished starting)."""
        try:
            conn = connect(self.config.redis_url, cluster=self.config.cluster)
            try:
                had_started = bool(conn.exists(self.keys.process(identity)))
                pushed = recover_process(conn, self.keys, identity, stale_after_s=0,
                                         dead=DeadLimits.of(self.config), on_failure=self.metrics.count_failure)
            finally:
                conn.close()
            if pushed > 0:
                log.info("put %d in-flight job(s) of %s back on their queues", pushed, identity)
            return had_started
        except Exception as exc:  # Redis down: survivors recover it once its heartbeat expires
            log.error("cannot recover jobs of %s now (%s); they will be recovered later", identity, exc)
            return False

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if not slot.pid and not slot.stopped and now >= slot.respawn_at:
                self._fork(slot)

    def _kill_remaining(self) -> None:
        for slot in self.slots:
            if slot.pid:
                log.error("worker %d did not stop in time: killing it", slot.index)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)


def _child_main(config: Config, identity: str, parent: int, old_mask: set[signal.Signals]) -> int:
    from .worker import Worker

    worker = Worker(config, identity)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    signal.signal(signal.SIGTSTP, lambda *_: worker.make_quiet())
    signal.signal(signal.SIGTTIN, lambda *_: worker.on_signal("TTIN"))
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    status = worker.run(parent_pid=parent)
    tracing.flush()  # the child leaves through os._exit, which skips the tracer provider's own exit flush
    return status
