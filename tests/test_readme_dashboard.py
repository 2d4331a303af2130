"""The README's "Dashboard and metrics" examples, run as written (only the ports change)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml

from conftest import free_port
from pool import http_get, running_pool, wait_until

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README.split("## Dashboard and metrics", 1)[1].split("\n## ", 1)[0]
SHELL, YAML = re.findall(r"```(?:sh|yaml)\n(.*?)```", SECTION, re.S)


def get(url: str, password: str | None = None) -> tuple[int, str]:
    return http_get(url, password, user="anyone")  # the README says any user name will do


def test_the_dashboard_command_serves_behind_its_password(redis_url: str) -> None:
    # Given the README's command line, on a free port
    [line] = [line for line in SHELL.splitlines() if "pyq web" in line]
    words = shlex.split(line, comments=True)
    env_words = [w for w in words if re.fullmatch(r"[A-Z_]+=.*", w)]
    command = words[len(env_words):]
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    env = {**os.environ, **dict(w.split("=", 1) for w in env_words), "PYQ_REDIS_URL": redis_url}
    proc = subprocess.Popen([sys.executable, "-m", *command], env=env, stderr=subprocess.DEVNULL)
    try:
        # Then it asks for the password, and with it shows the page
        wait_until(lambda: get(f"http://127.0.0.1:{port}/")[0] == 401, timeout=15)
        status, page = get(f"http://127.0.0.1:{port}/", env["PYQ_WEB_PASSWORD"])
        assert status == 200 and "Queues" in page
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
def test_the_metrics_setting_serves_prometheus_text(tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    # Given the README's metrics setting, on a free port
    metrics = yaml.safe_load(YAML)["metrics"]
    metrics["port"] = free_port()
    with running_pool(tmp_path, redis_url, metrics={**metrics, "host": "127.0.0.1"}, processes=1):
        # Then /metrics counts the live process
        url = f"http://127.0.0.1:{metrics['port']}/metrics"
        wait_until(lambda: re.search(r"^pyq_processes 1(\.0)?$", get(url)[1], re.M) is not None, timeout=20)
