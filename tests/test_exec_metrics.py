"""metrics/execution.py: Sidekiq 7/8 key formats, fields, histogram buckets, batching, failed flushes."""

from __future__ import annotations

import struct
import threading
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
import redis

from pyq.keys import Keys
from pyq.metrics.execution import (
    BUCKET_BOUNDS_MS,
    SHORT_TERM_S,
    ExecutionTracker,
    bucket_index,
    hash_keys,
    histogram_key,
)
from pyq.metrics.timing import TimedMiddleware

#: 2025-03-04 05:06:07 UTC
NOW_S = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc).timestamp()
NOW = datetime.fromtimestamp(NOW_S, timezone.utc)


def ctx(klass: str = "HardJob", **extra: object) -> SimpleNamespace:
    return SimpleNamespace(queue="default", job={"class": klass, "args": [], **extra})


def counters(r: redis.Redis, key: str) -> list[int]:
    raw = r.get(key) or b""
    raw = raw.ljust(2 * (len(BUCKET_BOUNDS_MS) + 1), b"\0")
    return list(struct.unpack(">26H", raw[:52]))


def test_key_formats_follow_sidekiq_7_and_8() -> None:
    keys = Keys()
    assert hash_keys(keys, NOW, "float") == [("j|20250304|5:6", SHORT_TERM_S)]
    assert [k for k, _ in hash_keys(keys, NOW, "ms")] == ["j|250304|5:06", "j|250304|5:0"]
    assert histogram_key(keys, "HardJob", NOW, "float") == "HardJob-04-05:6"
    assert histogram_key(keys, "HardJob", NOW, "ms") == "h|HardJob-4-5:6"
    assert hash_keys(Keys("ns"), NOW, "float")[0][0] == "ns:j|20250304|5:6"


@pytest.mark.parametrize(("ms", "index"), [(0, 0), (19, 0), (20, 1), (99, 4), (100, 5), (334_999, 24),
                                           (335_000, 25), (10**9, 25)])
def test_bucket_is_the_first_whose_bound_exceeds_the_time(ms: int, index: int) -> None:
    assert bucket_index(ms) == index


def test_flush_writes_fields_histogram_and_expiry_once_per_batch(r: redis.Redis) -> None:
    # Given three successful runs and one failure of HardJob, and one ActiveJob run
    tracker = ExecutionTracker(r, Keys(), "float")
    for ms in (10, 25, 120):
        tracker.record(ctx(), ms / 1000, False)
    tracker.record(ctx(), 0.5, True)
    tracker.record(ctx("Wrapper", wrapped="MailJob"), 0.001, False)
    # Then nothing reaches Redis before the flush
    assert r.dbsize() == 0
    # When flushed
    assert tracker.flush(NOW_S) == 5
    # Then the minute hash has Sidekiq's fields (failures count in p, not in ms)
    fields = {k.decode(): int(v) for k, v in r.hgetall("j|20250304|5:6").items()}
    assert fields == {"HardJob|p": 4, "HardJob|f": 1, "HardJob|ms": 155, "MailJob|p": 1, "MailJob|ms": 1}
    assert 0 < r.ttl("j|20250304|5:6") <= SHORT_TERM_S
    gram = counters(r, "HardJob-04-05:6")
    assert gram[0] == 1 and gram[1] == 1 and gram[5] == 1 and sum(gram) == 3
    assert 0 < r.ttl("HardJob-04-05:6") <= SHORT_TERM_S
    # And a second flush with nothing new writes nothing
    assert tracker.flush(NOW_S) == 0


def test_sidekiq_8_writes_minute_and_ten_minute_hashes(r: redis.Redis) -> None:
    tracker = ExecutionTracker(r, Keys(), "ms")
    tracker.record(ctx(), 0.03, False)
    tracker.flush(NOW_S)
    assert r.hget("j|250304|5:06", "HardJob|p") == b"1"
    assert r.hget("j|250304|5:0", "HardJob|ms") == b"30"
    assert r.ttl("j|250304|5:0") > SHORT_TERM_S
    assert counters(r, "h|HardJob-4-5:6")[2] == 1


def test_counts_survive_a_failed_flush(r: redis.Redis) -> None:
    # Given the minute hash's key holding a string, so the write fails with WRONGTYPE
    r.set("j|20250304|5:6", "not a hash")
    tracker = ExecutionTracker(r, Keys(), "float")
    tracker.record(ctx(), 0.01, False)
    # When the flush fails, Then the counts are kept for the next flush
    assert tracker.flush(NOW_S) == 0
    r.delete("j|20250304|5:6")
    tracker.record(ctx(), 0.01, False)
    assert tracker.flush(NOW_S) == 2
    assert r.hget("j|20250304|5:6", "HardJob|p") == b"2"


def test_middleware_times_the_call_and_reports_failures() -> None:
    seen: list[tuple[str, bool]] = []
    rec = SimpleNamespace(record=lambda c, elapsed, failed: seen.append((c.job["class"], failed)))
    mw = TimedMiddleware([rec])
    assert mw(ctx("A"), lambda: 42) == 42
    with pytest.raises(RuntimeError):
        mw(ctx("B"), lambda: (_ for _ in ()).throw(RuntimeError("x")))
    assert seen == [("A", False), ("B", True)]


def test_run_flushes_periodically_until_stopped(r: redis.Redis) -> None:
    tracker = ExecutionTracker(r, Keys(), "float", interval_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=tracker.run, args=(stop,))
    thread.start()
    try:
        tracker.record(ctx(), 0.01, False)
        for _ in range(100):
            if r.keys("j|*"):
                break
            stop.wait(0.02)
        assert r.keys("j|*")
    finally:
        stop.set()
        thread.join(2)
