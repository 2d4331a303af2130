"""History for the dashboard's overview: Sidekiq's per-day counters and its execution metrics (``j|`` keys).

Both are read in one pipelined round trip each, whatever the range: ``MGET`` of
``stat:processed:YYYY-MM-DD`` / ``stat:failed:YYYY-MM-DD`` for each day, and
``HGETALL`` of each minute's ``j|`` hash for the execution metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .. import payload
from ..connection import reply_int, text
from ..keys import Keys
from ..metrics.execution import hash_keys


@dataclass(frozen=True)
class DayCount:
    day: date
    processed: int
    failed: int


@dataclass(frozen=True)
class JobTotals:
    """One job class over the window: runs (failures included), failures, milliseconds of successful runs."""

    klass: str
    runs: int
    failures: int
    total_ms: int

    @property
    def avg_ms(self) -> float:
        successes = self.runs - self.failures
        return self.total_ms / successes if successes > 0 else 0.0


def daily_counts(redis: Any, keys: Keys, days: int, today: date | None = None) -> list[DayCount]:
    """Processed and failed per UTC day for the last ``days`` days, oldest first."""
    today = today or datetime.now(timezone.utc).date()
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    names = [keys.stat(kind, d.isoformat()) for d in span for kind in ("processed", "failed")]
    values = redis.mget(names) if names else []
    return [DayCount(d, int(values[2 * i] or 0), int(values[2 * i + 1] or 0)) for i, d in enumerate(span)]


def job_totals(redis: Any, keys: Keys, minutes: int, now_s: float | None = None,
               time_style: payload.TimeStyle = "float") -> list[JobTotals]:
    """Per job class, the sums of the last ``minutes`` minute hashes, busiest first."""
    now = datetime.fromtimestamp(time.time() if now_s is None else now_s, timezone.utc)
    pipe = redis.pipeline(transaction=False)
    for n in range(minutes):
        pipe.hgetall(hash_keys(keys, now - timedelta(minutes=n), time_style)[0][0])
    sums: dict[str, list[int]] = {}
    for row in pipe.execute(raise_on_error=False) if minutes > 0 else []:
        if not isinstance(row, dict):  # a key of another type (WRONGTYPE): not Sidekiq's, skipped
            continue
        for name, value in row.items():
            klass, _, kind = text(name).rpartition("|")
            slot = {"p": 0, "f": 1, "ms": 2}.get(kind)
            if slot is not None and klass:
                sums.setdefault(klass, [0, 0, 0])[slot] += reply_int(value)
    found = [JobTotals(k, *v) for k, v in sums.items()]
    return sorted(found, key=lambda t: (-t.runs, t.klass))
