"""Time limits, with real pyq processes: a job past its limit ends as pyq.JobTimeout in the retry set.

A job in Python code gets JobTimeout in its thread; one blocked in C (``time.sleep``, a socket read)
is stuck, so its worker process is replaced after ``timeout_grace``. Either way the pool keeps its
full concurrency afterwards, and the stuck job is not counted as a crash.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import pyq
from pool import child_pids, running_pool, wait_until

GRACE_S = 0.5
LIMIT_S = 1.0
SETTINGS = {"require": ["limitjobs"], "processes": 1, "concurrency": 2, "timeout_grace": GRACE_S}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening socket that accepts (through its backlog) and never sends a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def _retried(r: redis.Redis) -> list[dict]:
    return [json.loads(m) for m in r.zrange("retry", 0, -1)]


def _started_at(r: redis.Redis, token: str) -> float:
    wait_until(lambda: token.encode() in r.lrange("test:started", 0, -1))
    return time.monotonic()


def _assert_full_concurrency(r: redis.Redis, client: pyq.Client) -> None:
    """Two jobs that only finish when both run at once: both slots of the pool are free again."""
    for token in ("a", "b"):
        client.push({"class": "Rendezvous", "args": [token, 2]})
    wait_until(lambda: r.llen("test:done") == 2, timeout=10)


@pytest.mark.parametrize(("job", "extra"), [("SleepsForever", []), ("AsyncSleepsForever", []),
                                            ("ReadsForever", ["port"]), ("SpinsForever", [])])
def test_a_job_past_its_limit_lands_in_retry_as_job_timeout(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                             client: pyq.Client, silent_port: int, job: str,
                                                             extra: list[str]) -> None:
    args = ["t1", *([silent_port] if extra else [])]
    with running_pool(tmp_path, redis_url, **SETTINGS) as proc:
        wait_until(lambda: child_pids(proc.pid) and r.scard("processes") == 1)
        jid = client.push({"class": job, "args": args, "timeout": LIMIT_S})
        started = _started_at(r, "t1")
        wait_until(lambda: _retried(r), timeout=LIMIT_S + GRACE_S + 1 + 1)
        landed_after_s = time.monotonic() - started
        (failed,) = _retried(r)
        assert failed["jid"] == jid and failed["error_class"] == "pyq.JobTimeout"
        assert failed["timeout"] == LIMIT_S and failed["retry_count"] == 0
        assert landed_after_s <= LIMIT_S + GRACE_S + 1, landed_after_s
        assert not r.exists(f"pyq:crashes:{jid}")
        _assert_full_concurrency(r, client)
        (tmp_path / f"measured-{job}.txt").write_text(f"{landed_after_s:.3f}\n")
        print(f"{job}: JobTimeout in retry {landed_after_s:.3f}s after start (limit {LIMIT_S}s, grace {GRACE_S}s)")


def test_a_job_in_python_code_is_interrupted_in_its_thread_without_replacing_the_process(
        tmp_path: Path, redis_url: str, r: redis.Redis, client: pyq.Client) -> None:
    with running_pool(tmp_path, redis_url, **SETTINGS) as proc:
        wait_until(lambda: r.scard("processes") == 1)
        (worker,) = wait_until(lambda: child_pids(proc.pid))
        client.push({"class": "SpinsForever", "args": ["t1"], "timeout": LIMIT_S})
        wait_until(lambda: _retried(r), timeout=LIMIT_S + GRACE_S + 2)
        assert _retried(r)[0]["error_class"] == "pyq.JobTimeout"
        assert child_pids(proc.pid) == [worker]  # the soft limit was enough


def test_the_config_default_applies_to_jobs_that_set_no_limit(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                              client: pyq.Client) -> None:
    with running_pool(tmp_path, redis_url, **{**SETTINGS, "job_timeout": 1}):
        wait_until(lambda: r.scard("processes") == 1)
        client.push({"class": "Sleepy", "args": ["t1", 3600]})
        wait_until(lambda: _retried(r), timeout=LIMIT_S + GRACE_S + 3)
        (failed,) = _retried(r)
        assert failed["error_class"] == "pyq.JobTimeout" and "timeout" not in failed


def test_the_limit_travels_in_the_payload_and_options_are_checked() -> None:
    from limitjobs import sleeps_forever

    assert sleeps_forever.item(["x"], {})["timeout"] == 1
    configured = sleeps_forever.set(timeout=2.5)
    assert configured.definition.item(["x"], configured.overrides)["timeout"] == 2.5
    with pytest.raises(TypeError, match="timeout must be a number of seconds > 0"):
        pyq.job(timeout=0)(lambda: None)
    with pytest.raises(TypeError, match="timeout"):
        sleeps_forever.set(timeout="soon")


@pytest.mark.parametrize(("key", "value"), [("job_timeout", "soon"), ("job_timeout", 0), ("timeout_grace", -1)])
def test_a_bad_time_limit_setting_stops_the_start_with_one_line(tmp_path: Path, redis_url: str, key: str,
                                                                value: object) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(f"redis_url: {redis_url}\n{key}: {value}\n")
    done = subprocess.run([sys.executable, "-m", "pyq", "-C", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and key in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_empty_job_timeout_means_no_limit(tmp_path: Path) -> None:
    from pyq import config

    cfg = tmp_path / "ok.yml"
    cfg.write_text("job_timeout:\ntimeout_grace: 0.5\n")
    loaded = config.load(cfg, env={})
    assert loaded.job_timeout_s is None and loaded.timeout_grace_s == 0.5
