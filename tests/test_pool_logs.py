"""What a running pool's log says, read as an operator reads it: retries, hurried stops, config notes."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from pool import running_pool, wait_until

pytestmark = pytest.mark.slow


def pool_log(tmp_path: Path) -> str:
    return (tmp_path / "pool.log").read_text()


def test_the_logged_retry_count_is_the_stored_retry_count(tmp_path, r, client, redis_url):
    # Given a pool, a job failing for the first time and one failing on its fourth retry
    with running_pool(tmp_path, redis_url, processes=1):
        first = client.push({"class": "AlwaysFails", "args": ["first"]})
        again = client.push({"class": "AlwaysFails", "args": ["again"], "retry_count": 3})
        # Then both land in the retry set
        wait_until(lambda: r.zcard("retry") == 2)
        stored = {job["jid"]: job["retry_count"] for job in map(json.loads, r.zrange("retry", 0, -1))}
        wait_until(lambda: pool_log(tmp_path).count("runs again in") == 2)
    # And the log names the retry_count each stored job has
    assert stored == {first: 0, again: 4}
    log = pool_log(tmp_path)
    for jid, count in stored.items():
        assert re.search(rf"class=AlwaysFails jid={jid} .*retry_count={count}: runs again in \d+s", log), log


@pytest.mark.parametrize("how", ["timeout", "second TERM"])
def test_a_hurried_stop_says_so(tmp_path, r, client, redis_url, how):
    timeout = 1 if how == "timeout" else 25
    with running_pool(tmp_path, redis_url, processes=1, timeout=timeout) as proc:
        # Given a pool running a job longer than it will be allowed
        client.push({"class": "Sleepy", "args": ["long", 30]})
        wait_until(lambda: r.llen("test:started") == 1)
        # When it is stopped with TERM (and, in the second case, TERM again 1.5 s later)
        proc.send_signal(signal.SIGTERM)
        if how == "second TERM":
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    # Then the log says the stop was hurried, why, and that the job went back
    why = "past the 1s timeout" if how == "timeout" else "stop requested again"
    log = pool_log(tmp_path)
    assert f"hurried stop ({why}): 1 job(s) still running go back to their queues" in log, log
    assert r.llen("queue:default") == 1


def test_logfile_in_the_config_is_answered_with_how_to_get_that_file(tmp_path, r, redis_url):
    # Given a Sidekiq 5 style config that asks for a log file
    with running_pool(tmp_path, redis_url, processes=1, logfile="log/sidekiq.log", pidfile="tmp/sidekiq.pid"):
        wait_until(lambda: r.scard("processes") == 1)
    # Then the pool says it is ignored, why, and how to write that file instead; and writes no such file
    log = pool_log(tmp_path)
    assert "pool.yml: logfile: ignored: pyq logs to stderr, as Sidekiq 6+ does (Sidekiq 6.0 removed logfile)" in log
    assert "redirect it (pyq -C ... 2>>log/sidekiq.log)" in log, log
    assert "pool.yml: pidfile: ignored: pyq writes no pid file" in log, log
    assert not (tmp_path / "log").exists() and not (tmp_path / "tmp").exists()


def test_verbose_logging_shows_no_redis_maintenance_notification_lines(tmp_path, r, redis_url):
    # Given an in-flight owner entry left by a process that is gone, with no jobs in flight
    r.sadd("pyq:inflight-owners", "gone:1:0123456789ab")
    # When a pool runs with -v (debug) and its poller drops that entry
    with running_pool(tmp_path, redis_url, "-v", processes=1, poll_interval_average=0.2):
        wait_until(lambda: "dropped the in-flight entry of dead process gone:1:0123456789ab" in pool_log(tmp_path))
        assert not r.sismember("pyq:inflight-owners", "gone:1:0123456789ab")
    # Then pyq's own debug lines are there, redis-py's connect chatter is not, and no "recovered 0"
    log = pool_log(tmp_path)
    assert " DEBUG: " in log
    assert "maintenance notification" not in log.lower() and "MAINT_NOTIFICATIONS" not in log, log
    assert "recovered 0" not in log
