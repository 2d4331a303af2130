"""The worker's capacity: which fetched jobs are unfinished, and when the fetcher may fetch more.

The fetcher, the executors, the event loop and shutdown all read or change this one count; keeping
it in one small class with one condition variable makes every wait and wake-up visible in one place.
"""

from __future__ import annotations

import threading
import time

from .fetch import UnitOfWork


class InFlight:
    """Units fetched and not yet finished, bounded by ``capacity``.

    The fetcher refills once the count is down to ``refill_at``, so that each fetch takes a batch
    instead of the single slot one finished job frees.
    """

    def __init__(self, capacity: int, refill_at: int) -> None:
        self.capacity = capacity
        self.refill_at = refill_at
        self._units: set[UnitOfWork] = set()
        self._changed = threading.Condition()  #: notified when a unit finishes or a waiter must wake

    @classmethod
    def for_pool(cls, concurrency: int, prefetch: int | None) -> InFlight:
        """Room for ``concurrency`` running jobs plus ``prefetch`` buffered ones (None: as many again).

        The fetcher refills once half the buffer is used (never at capacity): each fetch then takes a batch
        instead of the one slot a finished job frees, and the buffer never runs dry during the round trip.
        """
        capacity = concurrency + (prefetch if prefetch is not None else concurrency)
        return cls(capacity, min(capacity - 1, concurrency + (capacity - concurrency) // 2))

    def __len__(self) -> int:
        return len(self._units)

    def add(self, units: list[UnitOfWork]) -> None:
        with self._changed:
            self._units.update(units)

    def done(self, unit: UnitOfWork) -> None:
        """A unit finished (acked, failed, put back or never started); wakes the fetcher at the mark."""
        with self._changed:
            self._units.discard(unit)
            if len(self._units) <= self.refill_at:
                self._changed.notify_all()

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
