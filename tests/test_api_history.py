"""The overview's history: Sidekiq's per-day counters and the execution metrics of both Sidekiq layouts."""

from __future__ import annotations

from datetime import date, datetime, timezone

import redis

from pyq.api.history import JobTotals, daily_counts, job_totals
from pyq.keys import Keys

NOW_S = datetime(2025, 3, 4, 5, 6, 30, tzinfo=timezone.utc).timestamp()


def test_daily_counts_are_oldest_first_with_missing_days_as_zero(r: redis.Redis) -> None:
    r.set("stat:processed:2025-03-04", 7)
    r.set("stat:failed:2025-03-04", 2)
    r.set("stat:processed:2025-03-02", 5)
    days = daily_counts(r, Keys(), 3, today=date(2025, 3, 4))
    assert [(d.day.isoformat(), d.processed, d.failed) for d in days] == [
        ("2025-03-02", 5, 0), ("2025-03-03", 0, 0), ("2025-03-04", 7, 2)]
    assert daily_counts(r, Keys("ns"), 1, today=date(2025, 3, 4))[0].processed == 0  # namespaced keys apart


def test_job_totals_sum_the_minutes_of_the_window(r: redis.Redis) -> None:
    r.hset("j|20250304|5:6", mapping={"A|p": 3, "A|f": 1, "A|ms": 40, "B|p": 1, "B|ms": 7})
    r.hset("j|20250304|5:4", mapping={"A|p": 2, "A|ms": 10})
    r.hset("j|20250304|4:6", mapping={"A|p": 100})  # an hour earlier: outside a 10-minute window
    r.set("j|20250304|5:5", "not a hash")
    assert job_totals(r, Keys(), 10, NOW_S) == [JobTotals("A", 5, 1, 50), JobTotals("B", 1, 0, 7)]
    assert job_totals(r, Keys(), 10, NOW_S)[0].avg_ms == 12.5


def test_job_totals_read_sidekiq_8_minute_keys_in_ms_style(r: redis.Redis) -> None:
    r.hset("j|250304|5:06", mapping={"A|p": 2, "A|ms": 30})
    r.hset("j|250304|5:0", mapping={"A|p": 50})  # the 10-minute roll-up is not counted twice
    assert job_totals(r, Keys(), 5, NOW_S, time_style="ms") == [JobTotals("A", 2, 0, 30)]
