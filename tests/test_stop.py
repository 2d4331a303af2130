"""Stopping a pool as operators do: Stop from Ruby's API or ``pyq processes stop``, TERM, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pool import running_pool, wait_until
from rubyhelp import requires_ruby, ruby_run

pytestmark = pytest.mark.slow

STOP_BANG = "Sidekiq::ProcessSet.new.find { |p| p.identity == ARGV[0] }.stop!"


def identities(r) -> set[str]:
    return {m.decode() for m in r.smembers("processes")}


def busy_identity(r) -> str:
    """The registered process whose ``IDENTITY:work`` hash shows a running job."""
    return wait_until(lambda: next((i for i in identities(r) if r.hlen(f"{i}:work")), None))


def pool_log(tmp_path: Path) -> str:
    return (tmp_path / "pool.log").read_text()


def pyq_admin(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYQ_REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "pyq", *args], env=env, capture_output=True, text=True, timeout=30)


def assert_stopped_for_good(r, tmp_path: Path, proc: subprocess.Popen[bytes], started: set[str]) -> None:
    """The supervisor exited 0, forked nothing after the first workers, and logged the stops at INFO."""
    assert proc.wait(15) == 0
    log = pool_log(tmp_path)
    assert log.count(" started: pid ") == len(started), log
    assert "recovering its jobs" not in log and "ERROR" not in log, log
    assert log.count("stopped on request") >= len(started), log
    assert identities(r) == set()


@requires_ruby
def test_ruby_stop_bang_stops_a_pyq_worker_without_a_replacement(tmp_path, r, client, redis_url):
    # Given a pool of two workers, one of them running a long job
    with running_pool(tmp_path, redis_url, processes=2, timeout=1, heartbeat_interval=0.5) as proc:
        wait_until(lambda: len(identities(r)) == 2)
        started = identities(r)
        client.push({"class": "Sleepy", "args": ["long", 30]})
        busy = busy_identity(r)
        idle = (started - {busy}).pop()
        # When Ruby's Sidekiq::Process#stop! stops the idle worker
        ruby_run(STOP_BANG, redis_url, idle)
        # Then it leaves the registry and no replacement takes its place
        wait_until(lambda: identities(r) == {busy}, timeout=10)
        time.sleep(1.5)
        assert identities(r) == {busy} and proc.poll() is None
        assert f"({idle}) stopped on request" in pool_log(tmp_path)
        # When the busy one is stopped too, its job goes back to its queue and the supervisor exits 0
        ruby_run(STOP_BANG, redis_url, busy)
        assert_stopped_for_good(r, tmp_path, proc, started)
    back = r.lrange("queue:default", 0, -1)
    assert len(back) == 1 and b'"Sleepy"' in back[0]
    assert r.llen("test:done") == 0 and r.llen("test:started") == 1


def test_pyq_processes_stop_all_ends_the_pool_with_status_0(tmp_path, r, client, redis_url):
    # Given a pool of two workers running one long job
    with running_pool(tmp_path, redis_url, processes=2, timeout=1, heartbeat_interval=0.5) as proc:
        wait_until(lambda: len(identities(r)) == 2)
        started = identities(r)
        client.push({"class": "Sleepy", "args": ["long", 30]})
        busy_identity(r)
        # When `pyq processes stop --all` is run
        out = pyq_admin(redis_url, "processes", "stop", "--all")
        assert out.returncode == 0, out.stderr
        # Then both stop for good, the job is back on its queue and the supervisor exits 0
        assert_stopped_for_good(r, tmp_path, proc, started)
    back = r.lrange("queue:default", 0, -1)
    assert len(back) == 1 and b'"Sleepy"' in back[0]
    assert not [k for k in r.scan_iter("pyq:inflight:*") if r.llen(k)]


def test_a_clean_stop_leaves_no_in_flight_owner_and_the_next_start_recovers_nothing(tmp_path, r, client, redis_url):
    settings = {"processes": 2, "poll_interval_average": 0.2}
    # Given a pool that ran a job and was stopped with TERM
    with running_pool(tmp_path, redis_url, **settings) as proc:
        wait_until(lambda: len(identities(r)) == 2)
        client.push({"class": "Record", "args": ["first"]})
        wait_until(lambda: r.get("stat:processed") == b"1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    # Then it left nothing behind: no in-flight list, no owner entry, no registry entry
    assert r.smembers("pyq:inflight-owners") == set()
    assert not list(r.scan_iter("pyq:inflight:*")) and identities(r) == set()
    # When the pool starts again, treating a process hash 1 s without a beat as dead, and its pollers
    # run (a scheduled job is promoted and runs) after the stopped processes' last beats are that old
    from workerjobs import record

    record.perform_in(0.1, "second")
    with running_pool(tmp_path, redis_url, **settings, recovery_timeout=1, heartbeat_interval=0.5):
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"first", b"second"], timeout=20)
        time.sleep(1.5)
    # Then it reports no recovery of the stopped processes
    log = pool_log(tmp_path)
    assert "in-flight job(s) of" not in log, log
