"""The worker's capacity: which fetched jobs are unfinished, which may run, and when to fetch more.

One budget governs sync and async jobs alike: at most ``concurrency`` run at once, whatever their kind,
as users size their connection pools to it. Fetched jobs beyond that (``prefetch``) wait here, in
fetch order, and start as slots free; the worker fetches them only while its running jobs are short,
and hands them back when one runs long (:data:`pyq.worker.HAND_BACK_AFTER_S`).

The fetcher, the executors, the event loop and shutdown all read or change these counts; keeping them
in one small class with one condition variable makes every wait and wake-up visible in one place.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .context import JobContext
from .fetch import UnitOfWork


class InFlight:
    """Units fetched and not yet finished (at most ``capacity``), of which at most ``slots`` run.

    The fetcher refills once the count is down to ``refill_at``.
    """

    def __init__(self, capacity: int, refill_at: int, slots: int) -> None:
        self.capacity = capacity
        self.refill_at = refill_at
        self.slots = slots
        self._units: set[UnitOfWork] = set()
        self._running = 0
        self._waiting: deque[JobContext] = deque()  #: prepared jobs no slot was free for, oldest first
        self._changed = threading.Condition()  #: notified when a unit finishes or a waiter must wake

    @classmethod
    def for_pool(cls, concurrency: int, prefetch: int | None) -> InFlight:
        """Room for ``concurrency`` running jobs plus ``prefetch`` waiting ones (None: as many again).

        With a prefetch the fetcher refills once half of it is used, so each fetch of a deep backlog
        takes a batch; with none it refills as soon as one slot is free.
        """
        extra = concurrency if prefetch is None else prefetch
        capacity = concurrency + extra
        return cls(capacity, min(capacity - 1, concurrency + extra // 2), concurrency)

    @property
    def waiting(self) -> int:
        """Prepared jobs waiting for a slot."""
        return len(self._waiting)

    def free_slots(self) -> int:
        """Slots no running or waiting job holds."""
        with self._changed:
            return self.slots - self._running - len(self._waiting)

    def __len__(self) -> int:
        return len(self._units)

    def add(self, units: list[UnitOfWork]) -> None:
        with self._changed:
            self._units.update(units)

    def admit(self, contexts: list[JobContext]) -> list[JobContext]:
        """Queue prepared jobs to run; returns those that take a slot now (the caller starts them)."""
        with self._changed:
            self._waiting.extend(contexts)
            return self._take_slots()

    def finished(self, ctx: JobContext) -> list[JobContext]:
        """A job that held a slot is over; returns the waiting jobs that take the freed slot."""
        with self._changed:
            self._running -= 1
            self._discard(ctx.unit)
            return self._take_slots()

    def done(self, unit: UnitOfWork) -> None:
        """A unit that never took a slot is over (could not start, or was put back)."""
        with self._changed:
            self._discard(unit)

    def take_waiting(self) -> list[UnitOfWork]:
        """Remove and return the jobs still waiting for a slot (to put them back at a stop)."""
        with self._changed:
            units = [ctx.unit for ctx in self._waiting]
            self._waiting.clear()
            for unit in units:
                self._discard(unit)
            return units

    def wait_for_room(self, timeout_s: float = 0.5) -> int:
        """Free room, once the count is down to the refill mark (or ``timeout_s`` passed)."""
        with self._changed:
            if len(self._units) > self.refill_at:
                self._changed.wait(timeout_s)
            return self.capacity - len(self._units)

    def wait_empty(self, deadline_s: float, hurry: threading.Event) -> bool:
        """Wait until every unit finished, the monotonic ``deadline_s`` passed or ``hurry`` is set."""
        while self._units and time.monotonic() < deadline_s and not hurry.is_set():
            with self._changed:
                self._changed.wait(0.1)
        return not self._units

    def wake(self) -> None:
        """Wake every waiter now (a stop was requested)."""
        with self._changed:
            self._changed.notify_all()

    def units(self) -> list[UnitOfWork]:
        """A copy of the unfinished units."""
        with self._changed:
            return list(self._units)

    def raws(self) -> set[bytes]:
        """The payloads of the unfinished units."""
        with self._changed:
            return {unit.raw for unit in self._units}

    def _take_slots(self) -> list[JobContext]:
        starting = []
        while self._waiting and self._running < self.slots:
            starting.append(self._waiting.popleft())
            self._running += 1
        return starting

    def _discard(self, unit: UnitOfWork) -> None:
        self._units.discard(unit)
        if len(self._units) <= self.refill_at:
            self._changed.notify_all()
