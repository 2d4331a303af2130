"""Prometheus metrics of a pool, and the hook a worker uses to record its jobs.

``jobs`` counts and times each job inside the workers (multiprocess files),
``collector`` reads queue and process gauges from Redis at scrape time,
``server`` is the supervisor's ``/metrics`` child process. Sidekiq's own
execution metrics (the Web UI's Metrics tab) live in :mod:`pyq.exec_metrics`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ..config import Config
from ..keys import Keys
from .server import MULTIPROC_ENV, PoolMetrics
from .timing import Recorder, TimedMiddleware

__all__ = ["PoolMetrics", "WorkerMetrics", "install"]


class WorkerMetrics:
    """What a worker runs for metrics: the middleware it added, and the flusher of execution metrics."""

    def __init__(self, tracker: Any = None) -> None:
        self.tracker = tracker

    def run(self, stop: threading.Event) -> None:
        if self.tracker is not None:
            self.tracker.run(stop)

    def flush(self) -> None:
        if self.tracker is not None:
            self.tracker.flush()


def install(config: Config, processor: Any, redis: Any, keys: Keys) -> WorkerMetrics:
    """Add one timing middleware, feeding the recorders this config asks for, to the processor's chain.

    Prometheus counters only when the pool serves ``/metrics`` (the supervisor set the
    multiprocess directory); Sidekiq execution metrics unless ``execution_metrics: false``.
    """
    recorders: list[Recorder] = []
    tracker = None
    if config.metrics_port is not None and os.environ.get(MULTIPROC_ENV):
        from .jobs import JobMetrics

        recorders.append(JobMetrics())
    if config.execution_metrics:
        from ..exec_metrics import ExecutionTracker

        tracker = ExecutionTracker(redis, keys, "s8" if config.time_style == "ms" else "s7")
        recorders.append(tracker)
    if recorders:
        mw = TimedMiddleware(recorders)
        if processor.middleware is None:
            processor.middleware = ProcessChain([mw])
        else:
            processor.middleware.append(mw)
    return WorkerMetrics(tracker)


class ProcessChain(Sequence[Any]):
    """The process-wide server middleware (read at each job, as the processor does) followed by ``extra``."""

    def __init__(self, extra: list[Any]) -> None:
        self.extra = extra

    def _current(self) -> list[Any]:
        from ..middleware import server_middleware

        return [*server_middleware, *self.extra]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __getitem__(self, index: Any) -> Any:
        return self._current()[index]

    def append(self, mw: Any) -> None:
        self.extra.append(mw)
