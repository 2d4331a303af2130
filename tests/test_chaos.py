"""Chaos, short run: 3,000 jobs through 4 worker processes, one SIGKILLed every second; on one Redis and on a
Redis Cluster."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from chaos.harness import ChaosRun, Plan
from conftest import RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
def results_server() -> Iterator[RedisServer]:
    """The tally lives apart from the queue Redis, so nothing the pool does can touch it."""
    server = RedisServer().start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shape", ["single", "cluster"])
def test_random_sigkills_lose_no_job_and_duplicate_only_jobs_in_flight(tmp_path, shape, request, results_server):
    # Given 3,000 counted jobs and a pool of 4 processes, on one Redis or on a 3-primary Redis Cluster
    queue_url = request.getfixturevalue("cluster_url" if shape == "cluster" else "redis_url")
    plan = Plan(jobs=3_000, kill_every_s=1.0, duration_s=60, processes=4, concurrency=4, sleep_ms=40, seed=7,
                max_kills=10)
    # When a random worker is SIGKILLed every second, ten times (more and the supervisor's restart
    # backoff, 30 s to reset, idles the pool: see test_faults), until every job has run
    report = ChaosRun(plan, queue_url, results_server.url, tmp_path, cluster=shape == "cluster").run()
    summary = report.summary()
    print(f"{shape}: {summary}")
    # Then none is lost, every repeat was in flight at a kill, and nothing is left behind
    assert report.lost == [] and report.unfinished == [], summary
    assert report.unexplained_duplicates == [], summary
    assert len(report.kills) >= 5, summary
    assert summary["leftover"] == {"queue": 0, "inflight": 0, "retry": 0, "dead": 0}, summary
    # And the supervisor put each victim's jobs back well within a second
    assert report.recovery_times and max(report.recovery_times) < 1.0, summary
    assert "killed by signal 9: recovering its jobs" in (tmp_path / "chaos.log").read_text()
