"""A worker serving several queues starts a job pushed by Ruby's client at once, not after ``fetch_wait``.

Ruby's ``LPUSH queue:NAME`` leaves no pyq wake-up marker; the idle wait watches the queue keys
through Redis's client tracking instead (``pyq.pushwatch``). Real pool, real Ruby Sidekiq client.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import redis

from conftest import RedisServer
from pool import running_pool, wait_until
from pyq import Client
from pyq.pushwatch import broadcast_prefixes
from rubyhelp import requires_ruby, ruby_run

RUBY_PUSH = """
Sidekiq::Client.push("class" => "StartDelay", "queue" => ARGV[0], "args" => [Time.now.to_f, 0.0])
"""


def test_overlapping_queue_keys_become_one_prefix() -> None:
    assert broadcast_prefixes(["queue:a", "queue:ab", "queue:b", "queue:a"]) == ["queue:a", "queue:b"]


@requires_ruby
def test_jobs_pushed_by_ruby_to_any_of_three_weighted_queues_start_at_once(tmp_path: Path, redis_url: str,
                                                                         r: redis.Redis) -> None:
    # Given an idle pool on three weighted queues that would otherwise wait up to 10 s for a marker
    with running_pool(tmp_path, redis_url, queues=[["critical", 3], ["default", 2], ["low", 1]],
                      fetch_wait=10, concurrency=2, processes=2):
        wait_until(lambda: r.scard("processes") == 2, timeout=20)
        time.sleep(1.5)
        # When Ruby's client pushes one job to each queue, one after another
        for queue in ("low", "default", "critical"):
            ruby_run(RUBY_PUSH, redis_url, queue)
            time.sleep(0.3)
        # And a push that is a bare LPUSH, as any other client writes it
        r.lpush("queue:low", json.dumps({"class": "StartDelay", "args": [time.time(), 0.0], "queue": "low",
                                         "jid": "a" * 24, "retry": True}))
        wait_until(lambda: r.llen("test:delay") == 4, timeout=15)
    # Then each started within a fraction of a second of its push
    delays = [float(d) for d in r.lrange("test:delay", 0, -1)]
    assert max(delays) < 0.5, delays


def raw_push(conn: redis.Redis, queue: str) -> None:
    """A job written as Ruby's client writes it: no wake-up marker."""
    conn.sadd("queues", queue)
    conn.lpush(f"queue:{queue}", json.dumps({"class": "StartDelay", "args": [time.time(), 0.0], "queue": queue,
                                             "jid": os.urandom(12).hex(), "retry": True}))


@pytest.mark.slow
def test_after_a_redis_restart_the_idle_wait_watches_again(tmp_path: Path) -> None:
    # Given an idle pool on two queues, and its Redis restarted under it
    server = RedisServer().start()
    conn = redis.Redis(port=server.port)
    try:
        with running_pool(tmp_path, server.url, queues=["default", "low"], fetch_wait=10, processes=1):
            wait_until(lambda: conn.scard("processes") == 1, timeout=20)
            time.sleep(1)
            server.stop()
            time.sleep(1)
            server.start()
            wait_until(lambda: conn.scard("processes") == 1, timeout=20)  # its heartbeat is back
            time.sleep(2.5)  # the fetcher reconnected and waits again
            # When a job is pushed without a marker
            raw_push(conn, "low")
            wait_until(lambda: conn.llen("test:delay") == 1, timeout=15)
        # Then it started at once
        assert float(conn.lindex("test:delay", 0)) < 0.5
    finally:
        server.stop()


def test_a_redis_user_that_may_not_track_falls_back_to_wake_markers(tmp_path: Path, redis_url: str,
                                                                   r: redis.Redis, client: Client) -> None:
    # Given a pool whose Redis user may run everything but CLIENT (so no tracking)
    r.execute_command("ACL", "SETUSER", "notrack", "on", ">n0track", "+@all", "-client", "~*", "&*")
    url = redis_url.replace("redis://", "redis://notrack:n0track@")
    with running_pool(tmp_path, url, queues=["default", "low"], processes=1):
        wait_until(lambda: r.scard("processes") == 1, timeout=20)
        time.sleep(1.5)
        # When pyq's client pushes (it leaves a wake-up marker)
        client.push({"class": "StartDelay", "args": [time.time(), 0.0], "queue": "low"})
        wait_until(lambda: r.llen("test:delay") == 1, timeout=15)
    # Then the job started at once, and the pool said why it waits for markers
    assert float(r.lindex("test:delay", 0)) < 0.5
    assert "client tracking unavailable" in (tmp_path / "pool.log").read_text()
