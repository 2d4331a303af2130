"""Per-job Prometheus counters and the duration histogram, recorded inside each worker process.

The worker only writes to prometheus-client's multiprocess files (one set per
pid in ``PROMETHEUS_MULTIPROC_DIR``); the supervisor's metrics server sums them.
Files of dead workers stay, so counts keep adding up across restarts.

Runs are counted by the timing middleware (:meth:`JobMetrics.record`); failures
by the processor's ``on_failure`` hook (:meth:`JobMetrics.count_failure`), which
hears of every job counted in ``stat:failed``, including the ones that never
started (unknown class, bad arguments, a payload that is not a job), so that
``sum(pyq_jobs_failed_total)`` follows ``stat:failed``.

Hot path: one dict lookup for the cached label children, two or three mmap
writes; no Redis, no allocation of label tuples beyond the lookup key.
"""

from __future__ import annotations

from typing import Any

from .. import payload
from ..context import Failure

#: Upper bounds (seconds) of the duration histogram: jobs run from milliseconds to many minutes.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                      float("inf"))


class JobMetrics:
    """Counts ``pyq_jobs_processed_total`` (failures included, as Sidekiq counts ``processed``),
    ``pyq_jobs_failed_total`` (also by ``reason``) and observes ``pyq_job_duration_seconds``, labelled by queue
    and job."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import Counter, Histogram, values

        # The value class is picked when prometheus_client is first imported; a job module may have
        # imported it before the supervisor set PROMETHEUS_MULTIPROC_DIR, so pick it again here.
        values.ValueClass = values.get_value_class()
        labels = ("queue", "job")
        self.processed = Counter("pyq_jobs_processed", "Jobs run (failures included).", labels, registry=registry)
        self.failed = Counter("pyq_jobs_failed", "Jobs counted in stat:failed, by why: error (raised), "
                              "unknown_class, bad_arguments, invalid_payload.", (*labels, "reason"), registry=registry)
        self.over_limit = Counter("pyq_jobs_over_limit", "Jobs rescheduled because a limiter had no room "
                                  "(not failures).", (*labels, "limiter"), registry=registry)
        self.duration = Histogram("pyq_job_duration_seconds", "Run time of a job.", labels, registry=registry,
                                  buckets=DURATION_BUCKETS_S)
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def record(self, ctx: Any, elapsed_s: float, failed: bool) -> None:
        """One run (a failed one too: its failure arrives through :meth:`count_failure`)."""
        key = (ctx.queue, payload.display_class(ctx.job))
        children = self._children.get(key) or self._bind(key)
        children[0].inc()
        children[1].observe(elapsed_s)

    def count_failure(self, failure: Failure) -> None:
        """One job counted in ``stat:failed``; one that never ran is counted as processed here, as Sidekiq does."""
        self.failed.labels(failure.queue, failure.job_class, failure.reason).inc()
        if not failure.ran:
            self.processed.labels(failure.queue, failure.job_class).inc()

    def count_rescheduled(self, ctx: Any, exc: Any) -> None:
        """One run that found a limiter full and was rescheduled (``exc.reason`` names the limiter)."""
        self.over_limit.labels(ctx.queue, payload.display_class(ctx.job), exc.reason).inc()

    def _bind(self, key: tuple[str, str]) -> tuple[Any, Any]:
        children = (self.processed.labels(*key), self.duration.labels(*key))
        self._children[key] = children
        return children
