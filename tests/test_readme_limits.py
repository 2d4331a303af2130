"""The README's "Limits and priorities" example, run as written with a real pool and checked with ``pyq limits``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from pool import running_pool, wait_until
from pyq.cli import main

pytestmark = pytest.mark.slow

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README.split("## Limits and priorities\n", 1)[1].split("\n## ", 1)[0]


def _blocks() -> list[str]:
    return [part.split("```", 1)[0] for part in SECTION.split("```python\n")[1:]]


def test_the_readme_billing_jobs_run_under_their_limits(tmp_path: Path, r: redis.Redis, redis_url: str) -> None:
    # Given the README's app/billing.py and its enqueue snippet
    job_code, enqueue_code = _blocks()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "billing.py").write_text(job_code)
    env = {**os.environ, "PYQ_REDIS_URL": redis_url,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    with running_pool(tmp_path, redis_url, require=["app.billing"], processes=2):
        # When the snippet pushes 20 charges, 21 receipts and a sync
        subprocess.run([sys.executable, "-c", enqueue_code], cwd=tmp_path, env=env, check=True, timeout=60)
        # Then every job runs, none fails, and pyq limits shows the three limiters
        wait_until(lambda: r.get("stat:processed") == b"42", timeout=60)
    assert r.get("stat:failed") is None and r.zcard("retry") == 0
    result = CliRunner().invoke(main, ["limits", "--redis-url", redis_url, "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)["limiters"]}
    assert rows["payment-gateway"]["limit"] == 5 and rows["payment-gateway"]["used"] == 0
    assert rows["email"]["kind"] == "window" and rows["email"]["used"] == 21
    assert rows["app.billing.sync_account:account-7"]["limit"] == 1
    log = (tmp_path / "pool.log").read_text()
    assert log.count("charged order") == 20 and "sent the receipt of order 999" in log
