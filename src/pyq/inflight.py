"""The worker's capacity: which fetched jobs are unfinished, which may run, and how many to fetch.

One budget governs sync and async jobs alike: at most ``concurrency`` run at once, whatever their kind,
as users size their connection pools to it. Fetched jobs beyond that (``prefetch``) wait here, in
fetch order, and start as slots free: the fetcher takes only as many as this process expects to start
within :data:`MAX_WAIT_S`, and hands back those that waited longer, so that no job waits behind a
long one while a slot elsewhere in the pool is free.

The fetcher, the executors, the event loop and shutdown all read or change these counts; keeping them
in one small class with one condition variable makes every wait and wake-up visible in one place.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .context import JobContext
from .fetch import UnitOfWork

#: Longest a prefetched job may wait in a process for a slot. The fetcher takes beyond the free slots
#: only as many jobs as this process expects to start within it (its recent rate of finished jobs),
#: and a job that still waited longer goes back to its queue, for a free slot elsewhere in the pool.
MAX_WAIT_S = 0.005


class InFlight:
    """Units fetched and not yet finished, of which at most ``slots`` run and up to ``prefetch`` wait."""

    def __init__(self, slots: int, prefetch: int, max_wait_s: float = MAX_WAIT_S) -> None:
        self.slots = slots
        self.prefetch = prefetch
        self.max_wait_s = max_wait_s
        self._units: set[UnitOfWork] = set()
        self._running = 0
        self._waiting: deque[tuple[JobContext, float]] = deque()  #: (job, monotonic arrival), oldest first
        self._finish_interval_s = max_wait_s  #: moving average of the time between two finished jobs
        self._last_finish_s = time.monotonic()
        self._woken = False
        self._changed = threading.Condition()  #: notified when a unit finishes or a waiter must wake

    @classmethod
    def for_pool(cls, concurrency: int, prefetch: int | None) -> InFlight:
        """``concurrency`` slots, and ``prefetch`` jobs that may wait for one (None: as many again)."""
        return cls(concurrency, concurrency if prefetch is None else prefetch)

    def __len__(self) -> int:
        return len(self._units)

    @property
    def waiting(self) -> int:
        """Prepared jobs waiting for a slot."""
        return len(self._waiting)

    def add(self, units: list[UnitOfWork]) -> None:
        with self._changed:
            self._units.update(units)

    def admit(self, contexts: list[JobContext]) -> list[JobContext]:
        """Queue prepared jobs to run; returns those that take a slot now (the caller starts them)."""
        now_s = time.monotonic()
        with self._changed:
            self._waiting.extend((ctx, now_s) for ctx in contexts)
            return self._take_slots()

    def finished(self, ctx: JobContext) -> list[JobContext]:
        """A job that held a slot is over; returns the waiting jobs that take the freed slot."""
        now_s = time.monotonic()
        with self._changed:
            self._running -= 1
            self._finish_interval_s += 0.2 * (now_s - self._last_finish_s - self._finish_interval_s)
            self._last_finish_s = now_s
            self._units.discard(ctx.unit)
            self._changed.notify_all()
            return self._take_slots()

    def done(self, unit: UnitOfWork) -> None:
        """A unit that never took a slot is over (could not start, or was put back)."""
        with self._changed:
            self._units.discard(unit)
            self._changed.notify_all()

    def take_waiting(self) -> list[UnitOfWork]:
        """Remove and return the jobs still waiting for a slot (to put them back at a stop)."""
        with self._changed:
            return self._take_all_waiting()

    def take_stale(self) -> list[UnitOfWork]:
        """The waiting jobs, once the oldest has waited past ``max_wait_s`` (the caller hands them back)."""
        with self._changed:
            return self._take_all_waiting() if self._stale() else []

    def wait_for_room(self, timeout_s: float = 0.5) -> int:
        """Jobs to fetch once a fetch is worth it, else 0 after ``timeout_s``: one per free slot, plus
        as many to wait as this process expects to start within ``max_wait_s``.

        A fetch is worth it at once when a slot is idle; while every slot is busy, once half of what
        may wait can be fetched, so that a deep backlog is fetched in batches. The wait also ends
        when the oldest waiting job turns stale (the caller hands it back) or :meth:`wake` is called.
        """
        deadline_s = time.monotonic() + timeout_s
        with self._changed:
            self._woken = False
            while not self._worth_fetching() and not self._woken and not self._stale():
                left_s = deadline_s - time.monotonic()
                if left_s <= 0:
                    break
                self._changed.wait(self._until_stale_s(left_s))
            return self._room() if self._worth_fetching() else 0

    def wait_for_change(self, timeout_s: float) -> None:
        """Wait until a job finishes, the oldest waiting one turns stale, or ``timeout_s`` passes."""
        with self._changed:
            self._changed.wait(self._until_stale_s(timeout_s))

    def wait_empty(self, deadline_s: float, hurry: threading.Event) -> bool:
        """Wait until every unit finished, the monotonic ``deadline_s`` passed or ``hurry`` is set."""
        while self._units and time.monotonic() < deadline_s and not hurry.is_set():
            with self._changed:
                self._changed.wait(0.1)
        return not self._units

    def wake(self) -> None:
        """Wake every waiter now (a stop was requested)."""
        with self._changed:
            self._woken = True
            self._changed.notify_all()

    def units(self) -> list[UnitOfWork]:
        """A copy of the unfinished units."""
        with self._changed:
            return list(self._units)

    def raws(self) -> set[bytes]:
        """The payloads of the unfinished units."""
        with self._changed:
            return {unit.raw for unit in self._units}

    def _may_wait(self) -> int:
        """How many jobs may wait here: as many as this process expects to start within ``max_wait_s``."""
        since_last_s = time.monotonic() - self._last_finish_s
        return min(self.prefetch, int(self.max_wait_s / max(self._finish_interval_s, since_last_s, 1e-6)))

    def _room(self) -> int:
        free = self.slots - self._running - len(self._waiting)
        return max(free, 0) + max(self._may_wait() - len(self._waiting), 0)

    def _worth_fetching(self) -> bool:
        if self.slots - self._running - len(self._waiting) > 0:
            return True
        may_wait = self._may_wait()
        return may_wait - len(self._waiting) >= max(1, may_wait // 2)

    def _stale(self) -> bool:
        return bool(self._waiting) and time.monotonic() - self._waiting[0][1] > self.max_wait_s

    def _until_stale_s(self, timeout_s: float) -> float:
        if not self._waiting:
            return timeout_s
        return max(0.0, min(timeout_s, self._waiting[0][1] + self.max_wait_s - time.monotonic())) + 1e-4

    def _take_slots(self) -> list[JobContext]:
        starting = []
        while self._waiting and self._running < self.slots:
            starting.append(self._waiting.popleft()[0])
            self._running += 1
        return starting

    def _take_all_waiting(self) -> list[UnitOfWork]:
        units = [ctx.unit for ctx, _ in self._waiting]
        self._waiting.clear()
        for unit in units:
            self._units.discard(unit)
        return units
