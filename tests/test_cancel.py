"""pyq.cancel with real pyq processes: queued, scheduled and retrying jobs never run; a running one stops.

A cancelled job is neither retried nor dead; the audit list (``pyq cancel --list``) keeps it, and a
running job's ``it-JID`` hash gets Sidekiq 7.3's ``cancelled`` field.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import pyq
from pool import running_pool, wait_until

SETTINGS = {"require": ["limitjobs"], "processes": 1, "concurrency": 2, "average_scheduled_poll_interval": 0.2,
            "poll_interval_average": 0.2}


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyq", "cancel", "--redis-url", redis_url, *args],
                          capture_output=True, text=True, timeout=30)


def test_a_queued_job_is_removed_and_audited(r: redis.Redis, client: pyq.Client, redis_url: str) -> None:
    jid = client.push({"class": "Record", "args": ["x"]})
    other = client.push({"class": "Record", "args": ["y"]})
    assert pyq.cancel(jid, client) == "queued"
    assert [json.loads(m)["jid"] for m in r.lrange("queue:default", 0, -1)] == [other]
    assert pyq.cancel(jid, client) == "unknown"
    (entry,) = pyq.cancelled_jobs(client)
    assert (entry.jid, entry.job_class, entry.where) == (jid, "Record", "queued")
    assert r.get("pyq:stat:cancelled") == b"1"
    listed = json.loads(_cli(redis_url, "--list", "--json").stdout)
    assert [(row["jid"], row["where"]) for row in listed] == [(jid, "queued")]


def test_the_cli_reports_where_the_job_was_and_refuses_a_bad_jid(client: pyq.Client, redis_url: str) -> None:
    jid = client.push({"class": "Record", "args": ["x"], "at": time.time() + 3600})
    done = _cli(redis_url, jid, "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == {"jid": jid, "was": "scheduled"}
    bad = _cli(redis_url, "no*such")
    assert bad.returncode == 2 and "not a job id" in bad.stderr


def test_queued_scheduled_and_retrying_jobs_never_run(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                      client: pyq.Client) -> None:
    soon = time.time() + 1.5
    scheduled = client.push({"class": "Record", "args": ["scheduled"], "at": soon})
    keep = client.push({"class": "Record", "args": ["kept"], "at": soon})
    queued = client.push({"class": "Record", "args": ["queued"]})
    retrying = {"class": "Record", "args": ["retried"], "queue": "default", "jid": "a" * 24, "retry": True,
                "retry_count": 0, "error_class": "RuntimeError", "error_message": "x", "failed_at": time.time(),
                "created_at": time.time()}
    r.zadd("retry", {json.dumps(retrying): soon})
    assert pyq.cancel(scheduled, client) == "scheduled"
    assert pyq.cancel(queued, client) == "queued"
    assert pyq.cancel("a" * 24, client) == "retrying"
    with running_pool(tmp_path, redis_url, **SETTINGS):
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"kept"], timeout=20)
        time.sleep(1.0)  # anything cancelled would have run by now
        assert r.lrange("test:done", 0, -1) == [b"kept"]
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0 and keep


@pytest.mark.parametrize("job", ["Cooperative", "AsyncCooperative"])
def test_a_running_cooperative_job_sees_interrupted_and_stops(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                             client: pyq.Client, job: str) -> None:
    with running_pool(tmp_path, redis_url, **SETTINGS):
        jid = client.push({"class": job, "args": ["t1"]})
        wait_until(lambda: r.llen("test:started") == 1)
        asked = time.time()
        assert pyq.cancel(jid, client) == "running"
        raw = wait_until(lambda: r.lindex("test:stopped", 0), timeout=5)
        token, stopped_at, was_cancelled = raw.decode().split(":")
        latency_s = float(stopped_at) - asked
        assert was_cancelled == "1" and latency_s < 1.0, latency_s
        print(f"{job}: cancel-to-stop {latency_s * 1000:.1f} ms")
        cancelled = r.hget(f"it-{jid}", "cancelled")
        assert cancelled is not None and abs(int(cancelled) - asked) <= 2
        assert 0 < r.ttl(f"it-{jid}") <= 30 * 86400
        wait_until(lambda: r.llen("pyq:inflight:" + r.smembers("processes").pop().decode()) == 0)  # settled
        time.sleep(0.3)
        assert r.zcard("retry") == 0 and r.zcard("dead") == 0 and r.get("stat:failed") is None
        (entry,) = pyq.cancelled_jobs(client)
        assert (entry.jid, entry.where) == (jid, "running")
        client.push({"class": "Record", "args": ["after"]})  # the slot is free again
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"after"])


def test_interrupted_covers_the_time_limit_too(tmp_path: Path, redis_url: str, r: redis.Redis,
                                               client: pyq.Client) -> None:
    with running_pool(tmp_path, redis_url, **SETTINGS):
        client.push({"class": "NotesTimeout", "args": ["t1"], "timeout": 0.5})
        raw = wait_until(lambda: r.lindex("test:stopped", 0), timeout=5)
        assert raw == b"t1:1:0"  # interrupted, not cancelled
        (failed,) = wait_until(lambda: r.zrange("retry", 0, -1), timeout=5)
        assert json.loads(failed)["error_class"] == "pyq.JobTimeout"


def test_a_stop_interrupts_a_cooperative_job_which_goes_back_to_its_queue(tmp_path: Path, redis_url: str,
                                                                          r: redis.Redis, client: pyq.Client) -> None:
    with running_pool(tmp_path, redis_url, **{**SETTINGS, "timeout": 20}) as proc:
        jid = client.push({"class": "Cooperative", "args": ["t1"]})
        wait_until(lambda: r.llen("test:started") == 1)
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        stopped_in_s = time.monotonic() - asked
    assert r.lindex("test:stopped", 0).decode().endswith(":0")  # interrupted by the stop, not cancelled
    (back,) = r.lrange("queue:default", 0, -1)
    assert json.loads(back)["jid"] == jid and r.zcard("retry") == 0 and r.zcard("dead") == 0
    assert stopped_in_s < 5, stopped_in_s  # well before the 20 s shutdown timeout
    assert not r.smembers("pyq:inflight-owners")
