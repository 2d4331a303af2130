"""Sidekiq 7/8 execution metrics (the Web UI's "Metrics" tab), written the way Sidekiq writes them.

Per job class and UTC minute, a hash ``j|...`` gets ``CLASS|p`` (runs,
failures included), ``CLASS|f`` (failures) and ``CLASS|ms`` (milliseconds of
successful runs), and a 26-bucket histogram of successful run times is kept
in a BITFIELD of unsigned 16-bit saturating counters. ``CLASS`` is the
``wrapped`` class of an ActiveJob, else ``class``.

Key formats (UTC):

==============  =====================  ==========================
what            Sidekiq 7 (default)    Sidekiq 8 (``time_format: ms``)
==============  =====================  ==========================
minute hash     ``j|YYYYMMDD|H:M``     ``j|YYMMDD|H:MM``
10-minute hash  --                     ``j|YYMMDD|H:T`` (3 days)
histogram       ``CLASS-DD-HH:M``      ``h|CLASS-D-H:M``
==============  =====================  ==========================

The tracker takes the pool's payload time style (``"float"`` or ``"ms"``): the
value that makes Sidekiq 8 write millisecond timestamps also picks its keys.

Runs are counted in memory and flushed every few seconds by the worker's
metrics thread (one pipeline per flush, never a round trip per job); a flush
that fails puts its counts back for the next one.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from .. import payload
from ..keys import Keys

log = logging.getLogger("pyq.metrics")

#: Upper bounds (ms) of Sidekiq's histogram buckets; a 26th bucket holds everything slower.
BUCKET_BOUNDS_MS = (20, 30, 45, 65, 100, 150, 225, 335, 500, 750, 1100, 1700, 2500, 3800, 5750, 8500, 13000,
                    20000, 30000, 45000, 65000, 100000, 150000, 225000, 335000)
#: Seconds the minute hashes and histograms live (Sidekiq: 8 hours).
SHORT_TERM_S = 8 * 60 * 60
#: Seconds the Sidekiq 8 ten-minute hashes live (3 days).
MID_TERM_S = 3 * 24 * 60 * 60
#: Seconds between flushes.
FLUSH_INTERVAL_S = 5.0


def bucket_index(ms: int) -> int:
    """Index of the first bucket whose upper bound exceeds ``ms`` (25 for slower runs)."""
    return bisect.bisect_right(BUCKET_BOUNDS_MS, ms)


def hash_keys(keys: Keys, now: datetime, time_style: payload.TimeStyle) -> list[tuple[str, int]]:
    """(key, ttl) of the counter hashes for the minute ``now`` falls in (Sidekiq 8's keys for ``"ms"``)."""
    if time_style == "ms":
        day = now.strftime("%y%m%d")
        return [(keys.metrics_hash(f"{day}|{now.hour}:{now.minute:02d}"), SHORT_TERM_S),
                (keys.metrics_hash(f"{day}|{now.hour}:{now.minute // 10}"), MID_TERM_S)]
    return [(keys.metrics_hash(f"{now.strftime('%Y%m%d')}|{now.hour}:{now.minute}"), SHORT_TERM_S)]


def histogram_key(keys: Keys, klass: str, now: datetime, time_style: payload.TimeStyle) -> str:
    """The histogram of ``klass`` for the minute ``now`` falls in (Sidekiq 8's key for ``"ms"``)."""
    if time_style == "ms":
        return keys.metrics_histogram(f"h|{klass}-{now.day}-{now.hour}:{now.minute}")
    return keys.metrics_histogram(f"{klass}-{now.strftime('%d-%H')}:{now.minute}")


class ExecutionTracker:
    """A metrics recorder that counts runs in memory; :meth:`flush` writes them to Redis."""

    def __init__(self, redis: Any, keys: Keys, time_style: payload.TimeStyle = "float",
                 interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.time_style = time_style
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._jobs: Counter[str] = Counter()
        self._grams: dict[str, list[int]] = {}

    def record(self, ctx: Any, elapsed_s: float, failed: bool) -> None:
        klass = payload.display_class(ctx.job)
        ms = int(elapsed_s * 1000)
        with self._lock:
            self._jobs[f"{klass}|p"] += 1
            if failed:
                self._jobs[f"{klass}|f"] += 1
                return
            self._jobs[f"{klass}|ms"] += ms
            gram = self._grams.get(klass) or self._grams.setdefault(klass, [0] * (len(BUCKET_BOUNDS_MS) + 1))
            gram[bucket_index(ms)] += 1

    def flush(self, now_s: float | None = None) -> int:
        """Write and reset the counts; returns how many fields were written (0 if nothing to do)."""
        with self._lock:
            jobs, grams = self._jobs, self._grams
            self._jobs, self._grams = Counter(), {}
        if not jobs:
            return 0
        now = datetime.fromtimestamp(time.time() if now_s is None else now_s, timezone.utc)
        try:
            self._write(jobs, grams, now)
        except Exception as exc:  # Redis down: keep the counts for the next flush
            log.warning("execution metrics: flush failed (%s); retrying with the next one", exc)
            self._restore(jobs, grams)
            return 0
        return len(jobs)

    def _write(self, jobs: Counter[str], grams: dict[str, list[int]], now: datetime) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for klass, gram in grams.items():
            key = histogram_key(self.keys, klass, now, self.time_style)
            ops = [a for i, n in enumerate(gram) if n for a in ("INCRBY", "u16", f"#{i}", n)]
            pipe.execute_command("BITFIELD", key, "OVERFLOW", "SAT", *ops)
            pipe.expire(key, SHORT_TERM_S)
        for key, ttl in hash_keys(self.keys, now, self.time_style):
            for field, value in jobs.items():
                pipe.hincrby(key, field, value)
            pipe.expire(key, ttl)
        pipe.execute()

    def _restore(self, jobs: Counter[str], grams: dict[str, list[int]]) -> None:
        with self._lock:
            self._jobs.update(jobs)
            for klass, gram in grams.items():
                mine = self._grams.setdefault(klass, [0] * len(gram))
                for i, n in enumerate(gram):
                    mine[i] += n

    def run(self, stop: threading.Event) -> None:
        """Flush every ``interval_s`` until ``stop``; the worker flushes once more at shutdown."""
        while not stop.wait(self.interval_s):
            self.flush()
