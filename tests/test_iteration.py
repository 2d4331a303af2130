"""Iterable jobs for real: stopped by TERM, killed by SIGKILL, cancelled, cut short by max_iteration_runtime."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from typing import Any

import pytest
import redis

import pyq
from iterjobs import DONE, HOOKS, SEEN, Recording, ShortRuns, tight_progress
from pool import child_pids, running_pool, running_worker, wait_until
from pyq.iteration import CHECKPOINT_INTERVAL_S
from pyq.keys import Keys
from pyq.web import Dashboard, Settings
from test_busy import pyq_cli
from webhelp import call

ITEMS = 10_000


def seen(r: redis.Redis) -> dict[int, int]:
    return {int(k): int(v) for k, v in r.hgetall(SEEN).items()}


def hooks(r: redis.Redis) -> list[str]:
    return [h.decode() for h in r.lrange(HOOKS, 0, -1)]


def state(r: redis.Redis, jid: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(f"it-{jid}").items()}


@pytest.mark.slow
def test_an_iterable_job_survives_a_term_and_a_sigkill_and_runs_every_item(tmp_path, r, client, redis_url):
    rng = random.Random()
    settings = {"processes": 1, "concurrency": 2, "timeout": 10, "require": ["iterjobs"]}
    jid = Recording.perform_async(ITEMS, 0.001)
    # Given a pool working through 10,000 items
    with running_pool(tmp_path, redis_url, **settings) as proc:
        term_after = rng.randint(1_000, 3_500)
        wait_until(lambda: r.hlen(SEEN) >= term_after, timeout=60)
        # When the pool is stopped with TERM at a random point
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    # Then the job saved its exact cursor and went back to its queue: nothing ran twice so far
    saved = state(r, jid)
    cursor = json.loads(saved["c"])
    assert saved["ex"] == "1" and float(saved["rt"]) > 0
    assert sorted(seen(r)) == list(range(cursor)) and set(seen(r).values()) == {1}
    [queued] = [json.loads(raw) for raw in r.lrange("queue:default", 0, -1)]
    assert queued["jid"] == jid and not r.zcard("retry")
    # When a new pool resumes it, and its worker is killed with SIGKILL at another random point
    with running_pool(tmp_path, redis_url, **settings) as proc:
        kill_after = cursor + rng.randint(1_000, 3_000)
        wait_until(lambda: r.hlen(SEEN) >= kill_after, timeout=60)
        last_saved = json.loads(state(r, jid)["c"])
        [worker] = child_pids(proc.pid)
        os.kill(worker, signal.SIGKILL)
        killed_at = r.llen(DONE)
        # and is then left to finish (the supervisor recovers the job and forks a new worker)
        wait_until(lambda: "complete:3" in hooks(r), timeout=90)
    # Then every item ran, and only items after the last checkpoint ran twice
    counts = seen(r)
    assert sorted(counts) == list(range(ITEMS))
    twice = sorted(item for item, n in counts.items() if n > 1)
    assert max(counts.values()) <= 2
    print(f"\nTERM at item {cursor}, SIGKILL near item {killed_at}; {len(twice)} item(s) ran twice")
    if twice:
        assert twice == list(range(twice[0], twice[-1] + 1))  # one stretch: checkpoint .. kill
        assert twice[0] >= last_saved and twice[-1] < killed_at + 5
        per_s = ITEMS / 15  # a generous bound on items run between two checkpoints
        assert len(twice) <= per_s * CHECKPOINT_INTERVAL_S * 2
    assert hooks(r) == ["start:1", "stop:1", "resume:2", "resume:3", "stop:3", "complete:3"]
    assert not r.exists(f"it-{jid}") and not r.llen("queue:default") and not r.zcard("retry")
    progress = pyq.progress(jid)
    assert progress is not None and (progress.done, progress.total) == (ITEMS, ITEMS)


def test_the_cancelled_field_stops_a_running_job_within_one_item(r, client, redis_url):
    jid = Recording.perform_async(100, 0.2)
    with running_worker(redis_url):
        wait_until(lambda: r.llen(DONE) >= 3)
        # When the job is cancelled as Ruby's Sidekiq::Client#cancel! does it
        pipe = r.pipeline(transaction=False)
        pipe.hsetnx(f"it-{jid}", "cancelled", int(time.time()))
        pipe.expire(f"it-{jid}", 30 * 86_400)
        pipe.llen(DONE)
        done_when_cancelled = pipe.execute()[2]
        wait_until(lambda: "complete:1" in hooks(r))
    # Then at most the item being worked on finished, on_cancel ran, and nothing is retried or queued
    assert r.llen(DONE) <= done_when_cancelled + 1
    assert hooks(r) == ["start:1", "cancel:1", "stop:1", "complete:1"]
    assert not r.zcard("retry") and not r.zcard("dead") and not r.llen("queue:default")
    assert not r.exists(f"it-{jid}")


def test_a_job_cancelled_before_it_runs_does_no_item(r, client, redis_url):
    jid = Recording.perform_async(10, 0.0)
    pyq.iteration.cancel(client.redis, client.keys, jid)
    with running_worker(redis_url):
        wait_until(lambda: "complete:1" in hooks(r))
    assert not r.llen(DONE) and hooks(r) == ["start:1", "cancel:1", "stop:1", "complete:1"]


def test_max_iteration_runtime_sends_the_job_back_to_its_queue_and_it_resumes(r, client, redis_url):
    ShortRuns.perform_async(30, 0.05)
    with running_worker(redis_url):
        wait_until(lambda: any(h.startswith("complete:") for h in hooks(r)), timeout=30)
    calls = hooks(r)
    runs = int(calls[-1].split(":")[1])
    # 30 items of 0.05 s in runs of about 0.3 s: at least 4 runs, each item done exactly once
    assert runs >= 4
    assert calls == ["start:1", "stop:1", *[x for n in range(2, runs) for x in (f"resume:{n}", f"stop:{n}")],
                     f"resume:{runs}", f"stop:{runs}", f"complete:{runs}"]
    assert seen(r) == {i: 1 for i in range(30)}
    assert not r.zcard("retry")


def test_an_error_saves_the_cursor_and_the_retry_resumes_at_the_failed_item(r, client, redis_url):
    class FailsOnce(Recording):
        def each_iteration(self, item: int, count: int, pause_s: float) -> None:
            if item == 5 and self.executions == 1:
                raise RuntimeError("boom")
            super().each_iteration(item, count, pause_s)

    jid = FailsOnce.perform_async(10, 0.0)
    with running_worker(redis_url):
        wait_until(lambda: r.zcard("retry"))
    saved = state(r, jid)
    assert (saved["ex"], saved["c"]) == ("1", "5") and seen(r) == {i: 1 for i in range(5)}


def test_progress_is_readable_while_running_and_its_writes_are_throttled(r, client, redis_url):
    writes: list[bytes] = []
    monitor_conn = redis.Redis.from_url(redis_url)

    def watch() -> None:
        try:
            with monitor_conn.monitor() as m:
                for command in m.listen():
                    text = str(command["command"])
                    if text.upper().startswith("HSET") and "pyq:progress:" in text:
                        writes.append(text)
        except (redis.ConnectionError, ValueError, AttributeError):
            pass  # the connection is closed at the end of the test

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.2)
    count = 3_000_000
    jid = tight_progress.perform_async(count)
    seen_done: list[Any] = []
    started = time.monotonic()
    with running_worker(redis_url):
        def finished() -> bool:
            p = pyq.progress(jid)
            if p is not None:
                seen_done.append(p.done)
            return p is not None and p.done == count
        wait_until(finished, timeout=60, interval=0.05)
    elapsed = time.monotonic() - started
    final = pyq.progress(jid)
    assert final is not None and (final.total, final.message, final.fraction) == (count, "crunching", 1.0)
    assert any(0 < d < count for d in seen_done), "progress readable while the job runs"
    assert 0 < r.ttl(f"pyq:progress:{jid}") <= 3 * 86_400
    time.sleep(0.2)
    monitor_conn.close()
    print(f"\n{count} progress reports in {elapsed:.1f}s -> {len(writes)} write(s)")
    assert 2 <= len(writes) <= elapsed / 0.5 + 3


@pytest.mark.slow
def test_pyq_busy_and_the_dashboard_show_a_running_jobs_progress(tmp_path, r, client, redis_url):
    jid = Recording.perform_async(400, 0.05)
    with running_pool(tmp_path, redis_url, processes=1, heartbeat_interval=0.5, require=["iterjobs"]):
        wait_until(lambda: r.llen(DONE) >= 20 and pyq.progress(jid) is not None)
        wait_until(lambda: any(r.hlen(f"{i.decode()}:work") for i in r.smembers("processes")))
        [row] = json.loads(pyq_cli(tmp_path, redis_url, "busy", "--json").stdout)
        page = call(Dashboard(Settings(r, Keys()), None), "/busy", password=None)[2]
    assert row["jid"] == jid and row["progress"]["total"] == 400 and 0 < row["progress"]["done"] < 400
    busy_table = page.split("id='busy-table'", 1)[1]
    assert "/400 (" in busy_table


def test_pyq_cancel_stops_an_iterable_job_running_in_a_pool_within_one_item(tmp_path, r, client, redis_url):
    jid = Recording.perform_async(100, 0.2)
    with running_pool(tmp_path, redis_url, require=["iterjobs"], processes=1):
        wait_until(lambda: r.llen(DONE) >= 3)
        # When pyq.cancel reaches the worker (its cancel listener sets the job's flag)
        assert pyq.cancel(jid, client) == "running"
        done_when_cancelled = r.llen(DONE)
        wait_until(lambda: "complete:1" in hooks(r))
    # Then at most the item under way finished, on_cancel ran, the job is not retried, and the audit has it
    assert r.llen(DONE) <= done_when_cancelled + 1
    assert hooks(r) == ["start:1", "cancel:1", "stop:1", "complete:1"]
    assert not r.zcard("retry") and not r.zcard("dead") and not r.llen("queue:default")
    assert [(e.jid, e.where) for e in pyq.cancelled_jobs(client)] == [(jid, "running")]
