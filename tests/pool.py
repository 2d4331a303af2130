"""Run a real ``pyq`` pool in a subprocess for tests, and wait on Redis-side outcomes."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml

TESTS_DIR = Path(__file__).parent


def write_config(path: Path, redis_url: str, **settings: Any) -> Path:
    config = {"redis_url": redis_url, "concurrency": 5, "processes": 2, "queues": ["default"],
              "timeout": 5, "require": ["workerjobs"], "log_level": "info", **settings}
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_pool(tmp_path: Path, redis_url: str, *args: str, **settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``pyq -C cfg`` in its own session; killed with its whole process group afterwards."""
    cfg = write_config(tmp_path / "pool.yml", redis_url, **settings)
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PYQ_REDIS_URL": redis_url}
    with open(tmp_path / "pool.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pyq", "-C", str(cfg), *args], env=env, cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            kill_group(proc)


def doc_config(name: str) -> dict[str, Any]:
    """The YAML example headed ``# config/NAME.yml`` in docs/operations.md (tests run those examples)."""
    import re

    text = (TESTS_DIR.parent / "docs/operations.md").read_text()
    match = re.search(rf"```yaml\n *# config/{name}\.yml[^\n]*\n(.*?)```", text, re.S)
    assert match, f"docs/operations.md has no config/{name}.yml example"
    return yaml.safe_load(match.group(1))


def kill_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL a process group and wait until every member is gone.

    Waiting matters: a worker that is still dying can be handed a job by a blocking
    BLMOVE it issued before, and that job would then sit in its in-flight list
    while the next test runs.
    """
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


@contextmanager
def running_worker(redis_url: str, identity: str = "test:1:0123456789ab", **overrides: Any) -> Iterator[Any]:
    """A real in-process Worker with tiny intervals; always stopped and shut down afterwards."""
    from pyq import config
    from pyq.worker import Worker

    settings = {"redis_url": redis_url, "concurrency": 2, "timeout": 1, "fetch_wait": 0.05,
                "average_scheduled_poll_interval": 0.1, "poll_interval_average": 0.1, **overrides}
    worker = Worker(config.load(None, overrides=settings, env={}), identity)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        worker.shutdown()


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it is truthy; fail the test with a clear message at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {getattr(predicate, '__name__', predicate)}")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the worker processes of a supervisor)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def http_get(url: str, password: str | None = None, user: str = "admin") -> tuple[int, str]:
    """(status, body) of a GET, with HTTP Basic auth when ``password`` is given; (0, "") while nothing listens."""
    request = urllib.request.Request(url)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError:
        return 0, ""


def outage_lines(log: str) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (process, loop): (outages logged, ends logged)."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for pid, what, kind in re.findall(r"pid=(\d+) .*?(?:ERROR|WARN): (.+?): Redis (unavailable|is back)", log):
        started, ended = counts.get((pid, what), (0, 0))
        counts[(pid, what)] = (started + (kind == "unavailable"), ended + (kind == "is back"))
    return counts


def fetch_order(r: Any, queue: str, identity: str = "host:1:abc") -> list[dict[str, Any]]:
    """Every job of ``queue`` in the order fetch.lua hands them out, one at a time (as one slot takes them);
    they end in ``identity``'s in-flight list."""
    from pyq.fetch import Fetcher, QueueOrder
    from pyq.keys import Keys

    fetcher = Fetcher(r, Keys(), identity, QueueOrder([(queue, 0)]))
    order = []
    while units := fetcher.retrieve_work(1):
        order.append(json.loads(units[0].raw))
    return order
