"""``scripts/run.sh``, the README's first command, as a new user runs it: from a plain ``python3``.

It must install into a virtualenv of its own (not into that ``python3``), run the example jobs against
a Redis it starts, and stop that Redis when Ctrl-C stops the pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from conftest import free_port
from pool import wait_until

REPO = Path(__file__).resolve().parents[1]


def answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.ConnectionError:
        return False


@pytest.mark.slow
def test_run_sh_uses_its_own_virtualenv_and_stops_the_redis_it_started(tmp_path: Path) -> None:
    # Given a shell whose first python3 is a plain interpreter (not a virtualenv) and no Redis on the port
    port = free_port()
    venv = tmp_path / "venv"
    env = {**os.environ, "PATH": f"{Path(sys.base_prefix) / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PYQ_VENV": str(venv), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYQ_REDIS_URL"):
        env.pop(name, None)
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # When the example jobs have run
        wait_until(lambda: answers(port) and int(redis.Redis(port=port).get("stat:processed") or 0) >= 5,
                   timeout=240)
        # And the user presses Ctrl-C
        os.killpg(proc.pid, signal.SIGINT)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if answers(port):
            redis.Redis(port=port).shutdown(nosave=True)
    # Then the pool stopped cleanly, pyq lives in the script's own virtualenv, and its Redis is gone
    output = log_path.read_text(errors="replace")
    assert status == 0, output[-3000:]
    assert (venv / "bin" / "pyq").exists()
    assert not answers(port), "run.sh left the Redis it started running"
    assert "pyq stopped" in output
