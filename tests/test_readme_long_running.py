"""The README's "Long-running jobs" time-limit and cancellation example, run as written with a real pool."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from pool import running_pool, wait_until

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README.split("### Time limits and cancellation\n", 1)[1].split("\n## ", 1)[0]


def _blocks() -> list[str]:
    return [part.split("```", 1)[0] for part in SECTION.split("```python\n")[1:]]


def test_the_readme_export_is_cancelled_while_running(tmp_path: Path, r: redis.Redis, redis_url: str) -> None:
    # Given the README's app/exports.py and its enqueue-and-cancel snippet
    job_code, cancel_code = _blocks()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "exports.py").write_text(job_code)
    env = {**os.environ, "PYQ_REDIS_URL": redis_url}
    with running_pool(tmp_path, redis_url, require=["app.exports"], processes=1):
        wait_until(lambda: r.scard("processes") == 1)
        # When the snippet enqueues an export and cancels it once the export runs
        enqueue, cancel = cancel_code.split("print(pyq.cancel(jid))")
        wait = "import time\ntime.sleep(1.0)\n"  # the idle pool starts it at once
        script = enqueue + wait + "print(pyq.cancel(jid))" + cancel
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
        # Then it was running, it stops at its next batch, and it is neither retried nor dead
        assert out == ["running"]
        wait_until(lambda: "cancelled: stopped after pyq.cancel" in (tmp_path / "pool.log").read_text(), timeout=5)
        assert time.monotonic() - started < 30
        assert r.zcard("retry") == 0 and r.zcard("dead") == 0
