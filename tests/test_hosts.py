"""Several hosts against one Redis, simulated with the ``hostname`` setting: a whole host killed with
SIGKILL (supervisor and workers) has its jobs recovered by another host within ``recovery_timeout``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
import yaml

import pyq
from pool import doc_config, kill_group, running_pool, wait_until
from pyq.config import load
from pyq.keys import Keys

KEYS = Keys()
RECOVERY_TIMEOUT_S = 3.0


def host_settings(name: str) -> dict[str, object]:
    """docs/operations.md's ``config/host.yml`` with shorter clocks: beats every second, recovery after 3 s,
    and each host's poller looking for orphans about twice a second."""
    settings = {k: v for k, v in doc_config("host").items() if k != "redis_url"}
    return {**settings, "hostname": name, "processes": 2, "concurrency": 3, "heartbeat_interval": 1,
            "recovery_timeout": RECOVERY_TIMEOUT_S, "poll_interval_average": 0.5}


def test_the_documented_host_config_takes_the_host_name_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "host.yml"
    path.write_text(yaml.safe_dump(doc_config("host")))
    assert load(path, env={"HOST_NAME": "worker-7"}).hostname == "worker-7"
    assert load(path, env={}).hostname == ""  # the machine's own name
    assert load(path, env={}).recovery_timeout_s == 60


def identities(r: redis.Redis, host: str) -> list[str]:
    return [m.decode() for m in r.smembers(KEYS.processes) if m.decode().startswith(f"{host}:")]


def inflight_of(r: redis.Redis, host: str) -> int:
    return sum(r.llen(key) for key in r.scan_iter(f"pyq:inflight:{host}:*"))


@pytest.mark.slow
def test_a_killed_host_has_its_jobs_run_by_another_within_recovery_timeout(tmp_path: Path, redis_url: str,
                                                                          r: redis.Redis) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    client = pyq.Client(redis_url)
    tokens = [f"job-{i}" for i in range(30)]
    with running_pool(tmp_path / "a", redis_url, **host_settings("host-a")) as host_a, \
            running_pool(tmp_path / "b", redis_url, **host_settings("host-b")):
        # Given two hosts registered under their own names, both running 2-second jobs
        wait_until(lambda: len(identities(r, "host-a")) == 2 and len(identities(r, "host-b")) == 2, timeout=30)
        client.push_bulk({"class": "Sleepy", "args": [[t, 2.0] for t in tokens]})
        wait_until(lambda: inflight_of(r, "host-a") >= 3, timeout=30)
        # When host A loses power: its supervisor and every worker die at once
        kill_group(host_a)
        killed_at = time.monotonic()
        held = inflight_of(r, "host-a")
        assert held >= 3
        # Then host B puts A's jobs back within recovery_timeout (plus a poll), and runs every job
        wait_until(lambda: inflight_of(r, "host-a") == 0, timeout=RECOVERY_TIMEOUT_S + 10)
        recovered_after_s = time.monotonic() - killed_at
        done = wait_until(lambda: (d := {t.decode() for t in r.lrange("test:done", 0, -1)}) >= set(tokens) and d,
                          timeout=60)
    assert done == set(tokens)
    assert recovered_after_s <= RECOVERY_TIMEOUT_S + 3, recovered_after_s
    log = (tmp_path / "b" / "pool.log").read_text(errors="replace")
    recovered = [int(n) for n in re.findall(r"recovered (\d+) in-flight job\(s\) of dead process host-a:", log)]
    assert sum(recovered) == held
