"""Prometheus metrics of a pool, and what a worker adds to its processor to record its jobs.

``jobs`` counts and times each job inside the workers (multiprocess files),
``execution`` writes Sidekiq's own execution metrics (the Web UI's Metrics
tab), ``collector`` reads queue and process gauges from Redis at scrape time,
``server`` is the supervisor's ``/metrics`` child process. Workers import this
package, never ``server``: the supervisor imports :class:`server.PoolMetrics`
itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..context import Failure
from ..keys import Keys
from .execution import ExecutionTracker
from .jobs import JobMetrics
from .timing import Recorder, TimedMiddleware

__all__ = ["MULTIPROC_ENV", "TimedMiddleware", "WorkerMetrics", "worker_metrics"]

#: Environment variable prometheus-client reads to pick multiprocess mode (set by the supervisor).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class WorkerMetrics:
    """What a worker plugs into its processor for metrics: the timing middleware, the ``on_failure`` hook
    (every job counted in ``stat:failed``, whether it ran or not), and the flusher of execution metrics."""

    def __init__(self, middleware: list[Any], tracker: ExecutionTracker | None = None,
                 on_failure: Callable[[Failure], Any] | None = None) -> None:
        self.middleware = middleware
        self.tracker = tracker
        self.on_failure = on_failure

    def run(self, stop: threading.Event) -> None:
        if self.tracker is not None:
            self.tracker.run(stop)

    def flush(self) -> None:
        if self.tracker is not None:
            self.tracker.flush()


def worker_metrics(config: Config, redis: Any, keys: Keys) -> WorkerMetrics:
    """One timing middleware (or none) feeding the recorders this config asks for, to pass to the processor.

    Prometheus counters only when the pool serves ``/metrics`` (the supervisor set the
    multiprocess directory); Sidekiq execution metrics unless ``execution_metrics: false``.
    """
    recorders: list[Recorder] = []
    tracker = on_failure = None
    if config.metrics_port is not None and os.environ.get(MULTIPROC_ENV):
        jobs = JobMetrics()
        recorders.append(jobs)
        on_failure = jobs.count_failure
    if config.execution_metrics:
        tracker = ExecutionTracker(redis, keys, config.time_style)
        recorders.append(tracker)
    return WorkerMetrics([TimedMiddleware(recorders)] if recorders else [], tracker, on_failure)
