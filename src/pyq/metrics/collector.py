"""Gauges read from Redis when Prometheus scrapes: queues, sorted sets, busy slots, processes.

Computed at scrape time (not pushed by workers) so the numbers are the same
whoever filled the queues: pyq, Ruby clients or the Web UI. One scrape costs
two pipelined round trips (see :meth:`pyq.api.Api.overview`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from ..keys import Keys
from ..logs import Outage

log = logging.getLogger("pyq.metrics")


class RedisCollector:
    """A prometheus-client custom collector over one Redis."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.outage = Outage(log, "metrics")

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ..api import Api

        try:
            snap = Api(self.redis, self.keys).overview()
            cancelled = int(self.redis.get(self.keys.cancelled_count) or 0)
        except Exception as exc:  # Redis down: report it instead of failing the whole scrape
            self.outage.failed(exc, retry_every_s=None)
            yield GaugeMetricFamily("pyq_redis_up", "1 when Redis answered this scrape.", value=0)
            return
        self.outage.ok()
        yield GaugeMetricFamily("pyq_redis_up", "1 when Redis answered this scrape.", value=1)
        size = GaugeMetricFamily("pyq_queue_size", "Jobs waiting in a queue.", labels=["queue"])
        latency = GaugeMetricFamily("pyq_queue_latency_seconds", "Age of the oldest job in a queue.",
                                    labels=["queue"])
        for q in snap.queues:
            size.add_metric([q.name], q.size)
            latency.add_metric([q.name], q.latency_s)
        yield size
        yield latency
        yield GaugeMetricFamily("pyq_retry_set_size", "Jobs waiting to be retried.", value=snap.retries)
        yield GaugeMetricFamily("pyq_dead_set_size", "Jobs in the dead set.", value=snap.dead)
        yield GaugeMetricFamily("pyq_scheduled_set_size", "Jobs scheduled for later.", value=snap.scheduled)
        yield GaugeMetricFamily("pyq_busy_slots", "Jobs running now across live processes.", value=snap.busy)
        yield GaugeMetricFamily("pyq_processes", "Live worker processes (pyq and Sidekiq).",
                                value=len(snap.processes))
        yield CounterMetricFamily("pyq_jobs_cancelled", "Jobs pyq.cancel found and cancelled (pyq:stat:cancelled).",
                                  value=cancelled)
