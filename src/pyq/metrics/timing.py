"""One server middleware that times each run and hands the outcome to the metric recorders.

All recorders share one middleware so a job pays for one wrapper, not one per
metric family. For ``async def`` jobs it offers ``async_call``, which
:mod:`pyq.middleware` awaits on the event loop, so the timing covers the job
itself without a thread hop per job. A :class:`~pyq.errors.Shutdown` interruption
is neither a success nor a failure and is not recorded: the job goes back to
its queue and runs again. A :class:`~pyq.errors.Requeued` run (an iterable job that
stopped and put itself back) is recorded as a run that did not fail; a
:class:`~pyq.errors.Rescheduled` one (over a limiter's limit) is also handed to each recorder's
``count_rescheduled``, if it has one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ..errors import Requeued, Rescheduled


class Recorder(Protocol):
    def record(self, ctx: Any, elapsed_s: float, failed: bool) -> None:
        """Count one finished run of ``ctx`` (``ctx.queue``, ``ctx.job``)."""
        ...


class TimedMiddleware:
    """Server middleware: ``mw(ctx, call_next)``; reports to every recorder."""

    def __init__(self, recorders: Sequence[Recorder]) -> None:
        self.recorders = list(recorders)

    def __call__(self, ctx: Any, call_next: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            result = call_next()
        except (Exception, SystemExit) as exc:
            self._report(ctx, time.perf_counter() - started, not isinstance(exc, Requeued))
            self._rescheduled(ctx, exc)
            raise
        self._report(ctx, time.perf_counter() - started, False)
        return result

    async def async_call(self, ctx: Any, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """The same around an ``async def`` job, on the event loop (no helper thread per job)."""
        started = time.perf_counter()
        try:
            result = await call_next()
        except (Exception, SystemExit) as exc:
            self._report(ctx, time.perf_counter() - started, not isinstance(exc, Requeued))
            self._rescheduled(ctx, exc)
            raise
        self._report(ctx, time.perf_counter() - started, False)
        return result

    def _report(self, ctx: Any, elapsed_s: float, failed: bool) -> None:
        for recorder in self.recorders:
            recorder.record(ctx, elapsed_s, failed)

    def _rescheduled(self, ctx: Any, exc: BaseException) -> None:
        if isinstance(exc, Rescheduled):
            for recorder in self.recorders:
                count = getattr(recorder, "count_rescheduled", None)
                if count is not None:
                    count(ctx, exc)
