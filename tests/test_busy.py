"""``pyq busy`` and ``pyq queues`` read Sidekiq's process registry: they show Ruby Sidekiq processes and pyq pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from pool import TESTS_DIR, running_pool, wait_until
from pyq.api import Api
from pyq.client import Client
from rubyhelp import requires_ruby, ruby_run, sidekiq_server

PUSH_SLOW = 'puts Sidekiq::Client.push("class" => "SlowJob", "args" => [30], "queue" => "ruby")'


def pyq_cli(cwd: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYQ_REDIS_URL": redis_url,
           "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-m", "pyq", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done


@requires_ruby
def test_busy_and_queues_show_ruby_sidekiq_and_pyq_processes(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                             client: Client) -> None:
    # Given a slow job for a Ruby Sidekiq process (queue "ruby"), one for a pyq pool (queue "default"),
    # and a job in a queue nobody serves
    ruby_jid = ruby_run(PUSH_SLOW, redis_url).strip()
    py_jid = client.push({"class": "Sleepy", "args": ["busy", 30]})
    client.push({"class": "Record", "args": ["stranded"], "queue": "nobody"})
    with sidekiq_server("record_worker.rb", redis_url, "ruby") as ruby, \
            running_pool(tmp_path, redis_url, processes=1, heartbeat_interval=0.5):
        # When both are running their job (Ruby Sidekiq 6.4 publishes it at its next 5 s beat)
        wait_until(lambda: len(Api(r).busy()) == 2, timeout=20)
        busy = json.loads(pyq_cli(tmp_path, redis_url, "busy", "--json").stdout)
        table = pyq_cli(tmp_path, redis_url, "busy").stdout
        queues = {q["name"]: q for q in json.loads(pyq_cli(tmp_path, redis_url, "queues", "--json").stdout)}
        queues_text = pyq_cli(tmp_path, redis_url, "queues").stdout
    # Then pyq busy lists each running job with its process, jid, class, args, start and runtime
    by_jid = {row["jid"]: row for row in busy}
    assert set(by_jid) == {ruby_jid, py_jid}
    ruby_row, py_row = by_jid[ruby_jid], by_jid[py_jid]
    assert f":{ruby.pid}:" in ruby_row["process"] and (ruby_row["class"], ruby_row["args"]) == ("SlowJob", [30])
    assert (py_row["class"], py_row["args"], py_row["queue"]) == ("Sleepy", ["busy", 30], "default")
    for row in busy:
        assert row["run_at"] > 0 and 0 <= row["runtime_s"] < 30
    assert table.splitlines()[0].split() == ["process", "jid", "class", "args", "started", "runtime_s",
                                              "progress"]
    assert any(ruby_jid in line and "SlowJob" in line and "[30]" in line for line in table.splitlines())
    # And pyq queues marks the queue that no live process serves
    assert [len(queues[name]["served_by"]) for name in ("default", "ruby", "nobody")] == [1, 1, 0]
    assert queues["ruby"]["served_by"] == [ruby_row["process"]]
    assert queues_text.splitlines()[0].split() == ["queue", "size", "latency_s", "served_by"]
    assert [line.split()[-1] for line in queues_text.splitlines() if line.startswith("nobody")] == ["NONE"]
    assert queues_text.rstrip().endswith("no live process serves: nobody")


OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def documented_output(command: str) -> list[str]:
    """The lines docs/operations.md shows under ``$ COMMAND``."""
    page = OPERATIONS.read_text(encoding="utf-8")
    return page.split(f"$ {command}\n", 1)[1].split("```", 1)[0].splitlines()


def test_busy_and_queues_print_what_operations_md_shows(tmp_path: Path, redis_url: str, r: redis.Redis,
                                                        client: Client) -> None:
    # Given a pyq pool running a slow job on "default", and jobs waiting in "reports", which it does not serve
    py_jid = client.push({"class": "Sleepy", "args": ["doc", 30]})
    client.push({"class": "Reports::Build", "args": [7], "queue": "reports"})
    with running_pool(tmp_path, redis_url, processes=1, heartbeat_interval=0.5):
        wait_until(lambda: len(Api(r).busy()) == 1)
        queues = pyq_cli(tmp_path, redis_url, "queues").stdout.splitlines()
        busy = pyq_cli(tmp_path, redis_url, "busy").stdout.splitlines()
    # Then the output has the documented shape: same columns, the same marks and footer
    doc_queues, doc_busy = documented_output("pyq queues"), documented_output("pyq busy")
    assert queues[0].split() == doc_queues[0].split() and busy[0].split() == doc_busy[0].split()
    assert [line.split()[-1] for line in queues if line.startswith("reports")] == ["NONE"]
    assert queues[-1] == "no live process serves: reports" == doc_queues[-1]
    [row] = busy[1:]
    assert row.split()[1:4] == [py_jid, "Sleepy", '["doc",'] and row.endswith(" UTC  " + row.split()[-1])
