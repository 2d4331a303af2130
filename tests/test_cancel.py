"""Cancelling jobs by jid: waiting ones are taken out before they run (and recorded), with real Redis."""

from __future__ import annotations

import json
import time

import redis
from click.testing import CliRunner

import pyq
from pool import running_pool, wait_until
from pyq.cli import main
from pyq.client import Client


def _cli(redis_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--redis-url", redis_url, "--json"])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_queued_job_is_taken_out_and_recorded(r: redis.Redis, client: Client) -> None:
    keep = client.push({"class": "Keep", "args": [1]})
    jid = client.push({"class": "Drop", "args": [2]})
    assert pyq.cancel(jid, client=client) == "queued"
    # Then only the other job is left, and the audit list says who was cancelled, from where
    assert [json.loads(raw)["jid"] for raw in r.lrange("queue:default", 0, -1)] == [keep]
    [entry] = pyq.cancellation.cancelled(r, client.keys)
    assert (entry["jid"], entry["class"], entry["where"], entry["args"]) == (jid, "Drop", "queued", [2])
    assert int(r.get("pyq:stat:cancelled")) == 1
    # and a second cancel finds nothing to take out
    assert pyq.cancel(jid, client=client) == "unknown"


def test_a_scheduled_job_and_a_retrying_job_are_taken_out(r: redis.Redis, client: Client) -> None:
    scheduled = client.push({"class": "Later", "args": [], "at": time.time() + 600})
    retrying = json.dumps({"class": "Flaky", "args": [], "jid": "a" * 24, "queue": "default", "retry_count": 0})
    r.zadd("retry", {retrying: time.time() + 600})
    assert pyq.cancel(scheduled, client=client) == "scheduled"
    assert pyq.cancel("a" * 24, client=client) == "retrying"
    assert r.zcard("schedule") == 0 and r.zcard("retry") == 0
    assert {e["where"] for e in pyq.cancellation.cancelled(r, client.keys)} == {"scheduled", "retrying"}


def test_a_dead_job_is_left_alone(r: redis.Redis, client: Client) -> None:
    dead = json.dumps({"class": "Gone", "args": [], "jid": "d" * 24, "queue": "default"})
    r.zadd("dead", {dead: time.time()})
    assert pyq.cancel("d" * 24, client=client) == "dead"
    assert r.zcard("dead") == 1 and r.zcard("pyq:cancelled") == 0


def test_an_unknown_job_is_flagged_as_ruby_s_cancel_does(r: redis.Redis, client: Client) -> None:
    assert pyq.cancel("e" * 24, client=client) == "unknown"
    assert r.hget(f"it-{'e' * 24}", "cancelled") is not None and r.ttl(f"it-{'e' * 24}") > 0


def test_old_audit_entries_are_dropped_after_dead_timeout(r: redis.Redis, client: Client) -> None:
    old = client.push({"class": "Old", "args": []})
    pyq.cancellation.cancel(r, client.keys, old, keep_s=60, now_s=time.time() - 3600)
    new = client.push({"class": "New", "args": []})
    pyq.cancellation.cancel(r, client.keys, new, keep_s=60)
    assert [e["jid"] for e in pyq.cancellation.cancelled(r, client.keys)] == [new]


def test_pyq_cancel_command_and_its_list(r: redis.Redis, client: Client, redis_url: str) -> None:
    jid = client.push({"class": "Drop", "args": []})
    assert json.loads(_cli(redis_url, "cancel", jid)) == {"jid": jid, "was": "queued"}
    assert [e["jid"] for e in json.loads(_cli(redis_url, "cancel", "--list"))] == [jid]
    bad = CliRunner().invoke(main, ["cancel", "--redis-url", redis_url])
    assert bad.exit_code == 2


def test_a_cancelled_queued_job_never_runs_in_a_pool(tmp_path, redis_url: str, r: redis.Redis,
                                                     client: Client) -> None:
    (tmp_path / "canceljobs.py").write_text(
        "import pyq, redis, os\n"
        "@pyq.job(name='Mark')\n"
        "def mark(n):\n"
        "    redis.Redis.from_url(os.environ['PYQ_REDIS_URL']).rpush('test:ran', n)\n")
    jids = [client.push({"class": "Mark", "args": [i]}) for i in range(5)]
    assert pyq.cancel(jids[2], client=client) == "queued"
    with running_pool(tmp_path, redis_url, require=["canceljobs"], processes=1):
        wait_until(lambda: r.llen("test:ran") == 4, timeout=20)
        time.sleep(0.3)
    assert sorted(int(n) for n in r.lrange("test:ran", 0, -1)) == [0, 1, 3, 4]
