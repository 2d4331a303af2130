"""The admin subcommands through click's CliRunner, plus one run against a live pool."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from pool import running_pool, wait_until
from pyq import admin
from pyq.cli import main
from pyq.client import Client
from pyq.errors import RET_USAGE


def run(redis_url: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, [*args, "--redis-url", redis_url] if "--help" not in args else list(args))
    assert result.exit_code == code, result.output
    return result.output


def failed_job(r: redis.Redis, jid: str, key: str = "retry", **fields: object) -> None:
    job = {"class": "HardJob", "args": [1], "queue": "mail", "jid": jid, "retry_count": 2,
           "error_message": "boom", **fields}
    r.zadd(key, {json.dumps(job): time.time() + 60})


def test_stats_json_and_table(r: redis.Redis, client: Client, redis_url: str) -> None:
    # Given two queued jobs, one retry, one dead, counters
    client.push({"class": "A", "args": []})
    client.push({"class": "A", "args": [], "queue": "mail"})
    failed_job(r, "r1")
    failed_job(r, "d1", "dead")
    r.set("stat:processed", 7)
    r.set("stat:failed", 2)
    data = json.loads(run(redis_url, "stats", "--json"))
    assert {k: data[k] for k in ("processed", "failed", "enqueued", "retries", "dead", "scheduled", "busy")} == \
        {"processed": 7, "failed": 2, "enqueued": 2, "retries": 1, "dead": 1, "scheduled": 0, "busy": 0}
    assert [q["name"] for q in data["queues"]] == ["default", "mail"]
    table = run(redis_url, "stats")
    assert table.splitlines()[0].split() == ["processed", "failed", "busy", "enqueued", "retries", "scheduled",
                                             "dead", "processes"]
    assert table.splitlines()[1].split() == ["7", "2", "0", "2", "1", "0", "1", "0"]


def test_queues_and_queue_clear(r: redis.Redis, client: Client, redis_url: str) -> None:
    for _ in range(3):
        client.push({"class": "A", "args": [], "queue": "mail"})
    assert json.loads(run(redis_url, "queues", "--json"))[0]["size"] == 3
    # Clearing needs --yes, and loses nothing without it
    assert "--yes" in run(redis_url, "queue", "clear", "mail", code=2)
    assert r.llen("queue:mail") == 3
    assert "3 job(s) deleted" in run(redis_url, "queue", "clear", "mail", "--yes")
    assert not r.exists("queue:mail") and not r.sismember("queues", "mail")


def test_retry_list_show_retry_delete_clear(r: redis.Redis, redis_url: str) -> None:
    for jid in ("aaa", "bbb", "ccc"):
        failed_job(r, jid)
    listed = json.loads(run(redis_url, "retry", "list", "--json"))
    assert [e["jid"] for e in listed] == ["aaa", "bbb", "ccc"]
    assert "aaa" in run(redis_url, "retry", "list")
    assert json.loads(run(redis_url, "retry", "show", "bbb"))["job"]["error_message"] == "boom"
    # retry now: back on its queue with retry_count lowered by one
    assert "1 job(s) pushed" in run(redis_url, "retry", "retry", "aaa")
    pushed = json.loads(r.lindex("queue:mail", 0))
    assert pushed["jid"] == "aaa" and pushed["retry_count"] == 1
    assert "deleted bbb" in run(redis_url, "retry", "delete", "bbb")
    assert "no job with jid zzz" in run(redis_url, "retry", "delete", "zzz", code=2)
    assert r.zcard("retry") == 1
    run(redis_url, "retry", "clear", code=2)
    assert "1 job(s) deleted" in run(redis_url, "retry", "clear", "--yes")
    assert r.zcard("retry") == 0


def test_dead_retry_all_and_scheduled(r: redis.Redis, client: Client, redis_url: str) -> None:
    failed_job(r, "d1", "dead")
    failed_job(r, "d2", "dead")
    run(redis_url, "dead", "retry", code=2)  # neither a jid nor --all
    assert json.loads(run(redis_url, "dead", "retry", "--all", "--json")) == {"retried": 2}
    assert r.llen("queue:mail") == 2
    jid = client.push({"class": "Later", "args": [], "at": time.time() + 600})
    assert jid in run(redis_url, "scheduled", "list")
    run(redis_url, "scheduled", "retry", str(jid))
    assert json.loads(r.lindex("queue:default", 0))["jid"] == jid


def test_enqueue_now_later_and_bad_arguments(r: redis.Redis, redis_url: str) -> None:
    jid = run(redis_url, "enqueue", "HardJob", '[1, "two"]', "--queue", "mail").strip()
    job = json.loads(r.lindex("queue:mail", 0))
    assert job["jid"] == jid and job["args"] == [1, "two"] and job["class"] == "HardJob"
    run(redis_url, "enqueue", "HardJob", "--in", "60")
    run(redis_url, "enqueue", "HardJob", "[]", "--at", "2999-01-01T00:00:00Z")
    assert r.zcard("schedule") == 2
    # Bad input: one line, exit 2, nothing pushed
    bad_args = (["[1"],
                ['{"a": 1}'], ["[]", "--at", "tomorrow"], ["[]", "--in", "5", "--at", "1"], ["[]", "--in", "-1"])
    for bad in bad_args:
        out = run(redis_url, "enqueue", "HardJob", *bad, code=2)
        assert len(out.strip().splitlines()) == 1, out
    assert r.llen("queue:mail") == 1 and r.zcard("schedule") == 2


def test_processes_quiet_and_stop_push_signals(r: redis.Redis, redis_url: str) -> None:
    # Given a process registered the way Ruby Sidekiq registers
    r.sadd("processes", "rb:42:abc")
    r.hset("rb:42:abc", mapping={"info": json.dumps({"hostname": "rb", "pid": 42, "concurrency": 5,
                                                      "queues": ["default"], "started_at": time.time()}),
                                 "busy": 1, "beat": time.time(), "quiet": "false"})
    assert "rb:42:abc" in run(redis_url, "processes")
    run(redis_url, "processes", "quiet", "rb:42:abc")
    run(redis_url, "processes", "stop", "--all")
    assert r.lrange("rb:42:abc-signals", 0, -1) == [b"TERM", b"TSTP"]
    assert 0 < r.ttl("rb:42:abc-signals") <= 60
    assert "no process" in run(redis_url, "processes", "quiet", "nope:1:x", code=2)


def test_cron_list_enable_disable_run(r: redis.Redis, redis_url: str) -> None:
    from pyq.cron import CronJob, CronStore
    from pyq.keys import Keys

    CronStore(r, Keys()).save(CronJob(name="nightly", cron="0 3 * * *", klass="Report", queue="reports"))
    assert json.loads(run(redis_url, "cron", "list", "--json"))[0]["status"] == "enabled"
    run(redis_url, "cron", "disable", "nightly")
    assert json.loads(run(redis_url, "cron", "list", "--json"))[0]["status"] == "disabled"
    run(redis_url, "cron", "enable", "nightly")
    out = run(redis_url, "cron", "run", "nightly")
    assert json.loads(r.lindex("queue:reports", 0))["class"] == "Report" and "jid" in out
    assert "no cron job" in run(redis_url, "cron", "enable", "missing", code=2)


def test_every_command_has_help_and_usage_errors_are_one_line(redis_url: str) -> None:
    for cmd in (["stats"], ["queues"], ["queue", "clear"], ["retry", "list"], ["dead", "show"], ["scheduled"],
                ["processes", "quiet"], ["cron", "run"], ["enqueue"], ["web"]):
        assert "Usage:" in run(redis_url, *cmd, "--help")
    out = run(redis_url, "stats", "--bogus", code=2)
    assert len(out.strip().splitlines()) == 1 and "--bogus" in out


def test_admin_commands_load_without_the_cli_and_are_all_on_it() -> None:
    # Given the admin package imported on its own, Then pyq.cli was not needed to build it
    code = "import sys, pyq.admin; print('pyq.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "False"
    # And every admin command is a subcommand of pyq, which has no others
    assert sorted(main.commands) == sorted(c.name for c in admin.COMMANDS if c.name)


def test_bad_usage_exits_with_the_usage_status(redis_url: str) -> None:
    assert RET_USAGE == 2
    run(redis_url, "dead", "retry", code=RET_USAGE)  # neither JID nor --all
    # And each sorted-set group names itself and its set in its messages
    assert "pyq scheduled clear: add --yes to empty the schedule" in run(redis_url, "scheduled", "clear",
                                                                         code=RET_USAGE)


def test_redis_down_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(main, ["stats", "--redis-url", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_config_file_supplies_the_redis_url(tmp_path: Path, r: redis.Redis, redis_url: str) -> None:
    r.set("stat:processed", 5)
    cfg = tmp_path / "q.yml"
    cfg.write_text(f"redis_url: {redis_url}\n")
    result = CliRunner().invoke(main, ["-C", str(cfg), "stats", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["processed"] == 5


@pytest.mark.slow
def test_against_a_live_pool(tmp_path: Path, r: redis.Redis, redis_url: str) -> None:
    # Given a running pool of two processes
    with running_pool(tmp_path, redis_url, processes=2, heartbeat_interval=0.5):
        wait_until(lambda: len(json.loads(run(redis_url, "processes", "list", "--json"))) == 2, timeout=20)
        # When a job is enqueued through the CLI, Then the pool runs it and stats count it
        run(redis_url, "enqueue", "Record", '["from-cli"]')
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"from-cli"], timeout=20)
        wait_until(lambda: json.loads(run(redis_url, "stats", "--json"))["processed"] >= 1, timeout=20)
        # When every process is quieted, Then each reports quiet on its next beat
        run(redis_url, "processes", "quiet", "--all")
        wait_until(lambda: all(p["quiet"] for p in json.loads(run(redis_url, "processes", "--json"))),
                   timeout=20)
