"""Prometheus metrics: job counters in multiprocess files, Redis gauges, and a real pool's /metrics.

The pool test kills a worker with SIGKILL and checks the totals still add up
after the supervisor forks its replacement.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

import pyq
from conftest import free_port
from pool import child_pids, running_pool, wait_until
from pyq import middleware, payload
from pyq.client import Client
from pyq.config import Config
from pyq.fetch import UnitOfWork
from pyq.keys import Keys
from pyq.metrics.collector import RedisCollector
from pyq.worker import Worker

JOBS = '''
import pyq

@pyq.job(name="Flaky", retry=False)
def flaky(fail):
    if fail:
        raise RuntimeError("asked to fail")
'''


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_job_counters_from_several_processes_add_up(tmp_path: Path) -> None:
    # Given two processes recording jobs into the same multiprocess directory
    script = textwrap.dedent("""
        import sys
        from types import SimpleNamespace
        from pyq.context import Failure
        from pyq.metrics.jobs import JobMetrics
        from pyq.metrics.timing import TimedMiddleware
        metrics = JobMetrics()
        mw = TimedMiddleware([metrics])
        ctx = SimpleNamespace(queue="q1", job={"class": "Wrapper", "wrapped": "MailJob", "args": []})
        for i in range(int(sys.argv[1])):
            try:
                mw(ctx, (lambda: 1) if i % 2 else (lambda: 1 / 0))
            except ZeroDivisionError:
                metrics.count_failure(Failure("q1", "MailJob", "error", ran=True))
        metrics.count_failure(Failure("q1", "Gone", "unknown_class", ran=False))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (4, 6):
        subprocess.run([sys.executable, "-c", script, str(n)], env=env, check=True, timeout=30)
    # When the files are aggregated
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    got = samples(generate_latest(registry).decode())
    # Then processed counts every run, failed only failures, the histogram every run;
    # a job that never ran counts as processed and failed, without a duration
    labels = (("job", "MailJob"), ("queue", "q1"))
    assert got[("pyq_jobs_processed_total", labels)] == 10
    assert got[("pyq_jobs_failed_total", (*labels, ("reason", "error")))] == 5
    assert got[("pyq_job_duration_seconds_count", labels)] == 10
    gone = (("job", "Gone"), ("queue", "q1"))
    assert got[("pyq_jobs_processed_total", gone)] == 2
    assert got[("pyq_jobs_failed_total", (*gone, ("reason", "unknown_class")))] == 2
    assert ("pyq_job_duration_seconds_count", gone) not in got


def test_redis_collector_reports_queues_sets_and_processes(r: redis.Redis, client: Client) -> None:
    # Given two queued jobs (one 30 s old), one retry, one scheduled, one dead and a live process
    r.sadd("queues", "mail")
    r.lpush("queue:mail", json.dumps({"class": "A", "args": [], "enqueued_at": time.time() - 30}))
    client.push({"class": "A", "args": []})
    r.zadd("retry", {'{"class":"A","args":[],"jid":"r1"}': time.time()})
    r.zadd("dead", {'{"class":"A","args":[],"jid":"d1"}': time.time()})
    client.push({"class": "A", "args": [], "at": time.time() + 60})
    r.sadd("processes", "h:1:abc", "h:2:gone")
    r.hset("h:1:abc", mapping={"info": '{"hostname":"h","pid":1,"concurrency":5}', "busy": 3, "beat": time.time()})
    registry = CollectorRegistry()
    registry.register(RedisCollector(r, Keys()))
    # When scraped
    got = samples(generate_latest(registry).decode())
    # Then every gauge has the value Redis holds (the process without a hash is not counted)
    assert got[("pyq_queue_size", (("queue", "mail"),))] == 1
    assert got[("pyq_queue_size", (("queue", "default"),))] == 1
    assert 29 < got[("pyq_queue_latency_seconds", (("queue", "mail"),))] < 60
    assert got[("pyq_queue_latency_seconds", (("queue", "default"),))] < 5
    assert got[("pyq_retry_set_size", ())] == 1
    assert got[("pyq_dead_set_size", ())] == 1
    assert got[("pyq_scheduled_set_size", ())] == 1
    assert got[("pyq_busy_slots", ())] == 3
    assert got[("pyq_processes", ())] == 1
    assert got[("pyq_redis_up", ())] == 1


def test_redis_collector_survives_redis_down() -> None:
    registry = CollectorRegistry()
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    registry.register(RedisCollector(down, Keys()))
    got = samples(generate_latest(registry).decode())
    assert got == {("pyq_redis_up", ()): 0}


@pyq.job(name="Metered")
def metered() -> None:
    pass


def run_one(worker: Worker, r: redis.Redis) -> None:
    """Fetch-free run of one Metered job through the worker's own processor."""
    raw = payload.dumps({"class": "Metered", "args": [], "queue": "default", "jid": payload.new_jid()}).encode()
    r.rpush(worker.keys.inflight(worker.identity), raw)
    ctx = worker.processor.prepare(UnitOfWork("default", raw))
    assert ctx is not None
    worker.processor.run(ctx)


def test_worker_times_its_jobs_inside_the_process_wide_chain(r: redis.Redis) -> None:
    # Given a worker with execution metrics, and a middleware registered after the worker was built
    worker = Worker(Config(execution_metrics=True, time_style="ms"), "testhost:1:metered", redis=r)
    seen: list[int] = []
    added = middleware.add_server_middleware(lambda ctx, call_next: (seen.append(1), call_next())[1])
    try:
        # When one job runs and the metrics are flushed
        run_one(worker, r)
        worker.metrics.flush()
    finally:
        middleware.server_middleware.remove(added)
    # Then the process-wide middleware ran, and the job was counted in Sidekiq 8's two hashes (minute, 10 minutes)
    assert seen == [1]
    assert [r.hget(k, "Metered|p") for k in r.keys("j|*")] == [b"1", b"1"]


def test_worker_adds_no_middleware_when_every_metric_is_off(r: redis.Redis) -> None:
    worker = Worker(Config(execution_metrics=False), "testhost:1:unmetered", redis=r)
    assert worker.processor.middleware == [] and worker.metrics.tracker is None
    run_one(worker, r)
    worker.metrics.flush()
    assert r.keys("j|*") == []


def test_importing_the_worker_leaves_the_metrics_server_unloaded() -> None:
    code = "import sys, pyq.worker; print('pyq.metrics.server' in sys.modules, 'pyq.metrics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.split() == ["False", "True"]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The pool's /metrics, or {} while it is not listening yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return samples(resp.read().decode())
    except OSError:
        return {}


@pytest.mark.slow
def test_pool_serves_metrics_that_add_up_across_a_worker_restart(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                                   client: Client) -> None:
    (tmp_path / "opsjobs.py").write_text(JOBS)
    port = free_port()
    labels = (("job", "Flaky"), ("queue", "default"))
    failed = ("pyq_jobs_failed_total", (*labels, ("reason", "error")))
    with running_pool(tmp_path, redis_url, require=["opsjobs"], metrics={"port": port, "host": "127.0.0.1"},
                      processes=2) as proc:
        # Given 10 jobs (4 failing) run by the pool
        for i in range(10):
            client.push({"class": "Flaky", "args": [i % 3 == 0], "retry": False})
        # (a run is counted when it returns, its failure once it is stored: wait for both)
        wait_until(lambda: scrape(port).get(("pyq_jobs_processed_total", labels)) == 10
                   and scrape(port).get(failed, 0) >= 4, timeout=20)
        assert scrape(port)[failed] == 4
        # When a worker is SIGKILLed and replaced, and 6 more jobs run
        before = child_pids(proc.pid)
        assert len(before) == 3  # two workers and the metrics server
        workers = [int(i.decode().split(":")[1]) for i in r.smembers("processes")]
        assert set(workers) < set(before)
        os.kill(workers[0], signal.SIGKILL)
        wait_until(lambda: len(set(child_pids(proc.pid)) - set(before)) == 1, timeout=20)
        for _ in range(6):
            client.push({"class": "Flaky", "args": [False]})
        # Then the totals include the dead worker's counts
        wait_until(lambda: scrape(port).get(("pyq_jobs_processed_total", labels)) == 16, timeout=20)
        got = scrape(port)
        assert got[failed] == 4
        wait_until(lambda: scrape(port).get(("pyq_processes", ())) == 2, timeout=20)
        assert got[("pyq_queue_size", (("queue", "default"),))] == 0



def test_pool_whose_metrics_port_is_taken_exits_2_before_forking(tmp_path: Path, redis_url: str,
                                                                  r: redis.Redis) -> None:
    # Given something already listening on the metrics port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When a pool is started with that port
        with running_pool(tmp_path, redis_url, metrics={"port": port, "host": "127.0.0.1"}) as proc:
            assert proc.wait(timeout=20) == 2
    # Then it said why in one line, and no worker ever registered
    log = (tmp_path / "pool.log").read_text()
    [line] = [line for line in log.splitlines() if "ERROR" in line]
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in line and "Traceback" not in log
    assert r.scard("processes") == 0


def test_redis_collector_counts_cancelled_jobs(r: redis.Redis, client: Client) -> None:
    import pyq

    for _ in range(2):
        pyq.cancel(client.push({"class": "A", "args": []}), client)
    registry = CollectorRegistry()
    registry.register(RedisCollector(r, Keys()))
    got = samples(generate_latest(registry).decode())
    assert got[("pyq_jobs_cancelled_total", ())] == 2


def test_jobs_rescheduled_over_a_limit_are_counted_apart_from_failures(tmp_path: Path) -> None:
    # Given a process whose timed runs end in a reschedule (a full limiter) or an ordinary error
    script = textwrap.dedent("""
        from types import SimpleNamespace
        from pyq.limiter.base import OverLimit, Reschedule
        from pyq.metrics.jobs import JobMetrics
        from pyq.metrics.timing import TimedMiddleware
        mw = TimedMiddleware([JobMetrics()])
        ctx = SimpleNamespace(queue="mail", job={"class": "SendJob", "args": []})
        for exc in (Reschedule("email", 1.0, 1.2), Reschedule("email", 2.0, 2.1), OverLimit("email", 1.0)):
            def run(exc=exc):
                raise exc
            try:
                mw(ctx, run)
            except OverLimit:
                pass
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    got = samples(generate_latest(registry).decode())
    # Then the two reschedules are counted per limiter; the OverLimit past its reschedules is not one
    assert got[("pyq_jobs_over_limit_total", (("job", "SendJob"), ("limiter", "email"), ("queue", "mail")))] == 2
