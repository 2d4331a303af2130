"""The minimal ACL documented in docs/operations.md is enough for everything pyq does.

A pool, a client, cron, unique jobs, a retry, a scheduled job, the admin CLI and the dashboard all run
as a Redis user that may run only the commands listed there. Jobs record on another server, so the
server under test sees only pyq's own commands.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import acljobs
import pyq
from conftest import RedisServer, free_port
from pool import TESTS_DIR, doc_config, http_get, running_pool, wait_until

ROOT = TESTS_DIR.parent
DONE = "test:done"


def documented_acl() -> str:
    """The ``ACL SETUSER`` rules of the example in docs/operations.md (the line after ``user pyq``)."""
    text = (ROOT / "docs/operations.md").read_text()
    match = re.search(r"^ACL SETUSER pyq (.+)$", text, re.M)
    assert match, "docs/operations.md must show the ACL SETUSER line for the pyq user"
    return re.sub(r" >\S+", " >s3cret", match.group(1))


@pytest.fixture
def acl_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def set_user(server: RedisServer, rules: str) -> str:
    """Create the ``pyq`` user; returns the URL of the docs' ``config/acl.yml`` pointed at ``server``."""
    admin = redis.Redis(port=server.port)
    admin.execute_command("ACL", "SETUSER", "pyq", "reset", *rules.split())
    admin.config_resetstat()
    example = doc_config("acl")["redis_url"]
    return example.replace("${PYQ_REDIS_PASSWORD}", "s3cret").replace("redis.internal:6379", f"127.0.0.1:{server.port}")


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pyq", *args, "--redis-url", url], capture_output=True, text=True,
                          env=env, timeout=60)


def run_everything(tmp_path: Path, url: str, record: redis.Redis) -> None:
    """Every kind of work pyq does, as the user of ``url``: jobs, bulk, scheduled, unique, a retry, cron,
    a batch and its callback, limiters and priorities, the admin commands and the dashboard."""
    cron = {"tick": {"cron": "every second", "class": "ACLRecord", "args": ["cron"]}}
    with running_pool(tmp_path, url, require=["acljobs"], processes=1, cron=cron, queues=["default", "low"],
                      average_scheduled_poll_interval=0.5):
        client = pyq.Client(url)
        client.push({"class": "ACLRecord", "args": ["plain"]})
        client.push_bulk({"class": "ACLRecord", "args": [["bulk1"], ["bulk2"]]})
        client.push({"class": "ACLRecord", "args": ["scheduled"], "at": time.time() + 1})
        assert client.push({"class": "ACLUnique", "args": ["unique"], "lock": "until_executed"})
        client.push({"class": "ACLFailOnce", "args": ["retry"]})
        with pyq.Batch("acl", on_success=("ACLRecord", ["batch-success"]), client=client):
            client.push({"class": "ACLRecord", "args": ["in-batch"]})
        acljobs.acl_limited.set(client=client).perform_async("limited")
        wait_until(lambda: cli(url, "retry", "list").stdout.count("ACLFailOnce") == 1, timeout=30)
        assert cli(url, "retry", "retry", "--all").returncode == 0
        assert cli(url, "cron", "run", "tick").returncode == 0
        expected = {"plain", "bulk1", "bulk2", "scheduled", "unique", "retry", "cron", "in-batch", "batch-success",
                    "limited"}
        wait_until(lambda: {t.decode() for t in record.smembers(DONE)} >= expected, timeout=30)
        for args in (["stats", "--json"], ["queues"], ["retry", "list"], ["dead", "list"], ["scheduled", "list"],
                     ["busy"], ["processes"], ["cron", "list"], ["batches"], ["limits"]):
            result = cli(url, *args)
            assert result.returncode == 0, f"pyq {' '.join(args)}: {result.stderr}"
        assert json.loads(cli(url, "stats", "--json").stdout)["processed"] >= 7
        dashboard(url)


def dashboard(url: str) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    web = subprocess.Popen([sys.executable, "-m", "pyq", "web", "--no-auth", "--port", str(port), "--redis-url", url],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status, body = wait_until(lambda: (got := http_get(f"http://127.0.0.1:{port}/"))[0] and got, timeout=20)
        assert status == 200, body[:500]
        assert "ACLRecord" in body, body[:500]  # the dashboard read the jobs as this user
    finally:
        web.kill()
        web.wait(10)


@pytest.mark.slow
def test_the_documented_acl_is_enough(tmp_path: Path, acl_server: RedisServer, redis_url: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORD_URL", redis_url)
    url = set_user(acl_server, documented_acl())
    run_everything(tmp_path, url, redis.Redis.from_url(redis_url))
    admin = redis.Redis(port=acl_server.port)
    denied = [entry for entry in admin.acl_log() if entry.get("username") == "pyq"]
    assert denied == [], denied
    log = (tmp_path / "pool.log").read_text(errors="replace")
    assert "NOPERM" not in log and "refused" not in log


def test_a_wrong_password_for_the_acl_user_exits_2_with_one_line(tmp_path: Path, acl_server: RedisServer) -> None:
    url = set_user(acl_server, documented_acl()).replace(":s3cret@", ":wrong@")
    with running_pool(tmp_path, url) as proc:
        assert proc.wait(timeout=30) == 2
    log = (tmp_path / "pool.log").read_text(errors="replace")
    [line] = [line for line in log.splitlines() if "ERROR" in line]
    assert f"redis://pyq:***@127.0.0.1:{acl_server.port}/0 refused pyq" in line and "wrong" not in line
