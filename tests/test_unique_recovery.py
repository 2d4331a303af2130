"""A unique job whose worker is SIGKILLed mid-run: recovered, run again, and its runtime lock freed."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest
import redis

import pyq
from pool import child_pids, running_pool, wait_until
from pyq import unique

pytestmark = pytest.mark.slow

JOBS = '''
    import os
    import time

    import redis

    import pyq


    @pyq.job(name="Unique::Sleepy", lock="while_executing")
    def sleepy(token: str) -> None:
        conn = redis.Redis.from_url(os.environ["PYQ_REDIS_URL"])
        attempt = conn.incr(f"test:attempt:{token}")
        conn.rpush("test:started", token)
        if attempt == 1:
            time.sleep(30)  # killed here
        conn.rpush("test:done", token)
'''


def test_sigkill_of_the_lock_holder_reruns_it_and_frees_its_run_lock(tmp_path: Path, r: redis.Redis,
                                                                   client: pyq.Client, redis_url: str) -> None:
    (tmp_path / "uniquerec.py").write_text(textwrap.dedent(JOBS))
    with running_pool(tmp_path, redis_url, processes=1, concurrency=2, require=["uniquerec"]) as proc:
        wait_until(lambda: len(child_pids(proc.pid)) == 1)
        # Given a while_executing job that holds its :RUN lock
        jid = client.push({"class": "Unique::Sleepy", "args": ["a"], "lock": "while_executing"})
        wait_until(lambda: r.llen("test:started") == 1)
        digest = unique.digest({"class": "Unique::Sleepy", "queue": "default", "args": ["a"]})
        assert r.hkeys(f"{digest}:RUN:LOCKED") == [jid.encode()]
        # When its worker is SIGKILLed
        os.kill(child_pids(proc.pid)[0], signal.SIGKILL)
        # Then the job is recovered and runs to the end, and its runtime lock is gone
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"a"], timeout=30)
        wait_until(lambda: r.exists(f"{digest}:RUN:LOCKED") == 0)
        # And the next job with the same digest runs rather than being skipped as a duplicate
        client.push({"class": "Unique::Sleepy", "args": ["a"], "lock": "while_executing"})
        wait_until(lambda: r.llen("test:done") == 2, timeout=15)
    assert r.zscore("uniquejobs:digests", f"{digest}:RUN") is None

