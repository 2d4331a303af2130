"""Bad calls fail at the caller: arguments, keyword arguments, job options, and ``pyq enqueue`` of a pyq job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

import pyq
from pool import TESTS_DIR, running_pool, wait_until
from pyq.client import Client
from pyq.errors import RET_USAGE


@pyq.job(name="Callers::Build", queue="reports", retry=3)
def build(report_id: int, options: dict | None = None) -> None:
    return None


class Export(pyq.Job, name="Callers::Export"):
    def perform(self, export_id: int, *formats: str) -> None:
        return None


# --- arguments ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda: build.perform_async(), "Callers::Build(report_id, options=None) cannot take args []"),
    (lambda: build.perform_async(1, {}, 3), "cannot take args [1, {}, 3]"),
    (lambda: build.perform_in(60), "cannot take args []"),
    (lambda: build.perform_at(2_000_000_000.0, 1, 2, 3), "cannot take args [1, 2, 3]"),
    (lambda: build.set(queue="urgent").perform_async(), "cannot take args []"),
    (lambda: build.perform_bulk([[1], [2, {}], [3, {}, "x"]]), "perform_bulk call 2: Callers::Build("),
    (lambda: Export.perform_async(), "Callers::Export(export_id, *formats) cannot take args []"),
])
def test_arguments_that_do_not_fit_the_signature_fail_at_the_call(client: Client, r: redis.Redis, call: Any,
                                                                  message: str) -> None:
    # When a call's arguments do not fit the job's signature, Then the caller gets the error and nothing is stored
    with pytest.raises(TypeError) as caught:
        call()
    assert message in str(caught.value)
    assert r.dbsize() == 0
    # And calls that fit are pushed
    build.perform_async(1)
    build.perform_bulk([[1], [2, {"format": "pdf"}]])
    Export.perform_async(1, "csv", "pdf")
    assert r.llen("queue:reports") == 3 and r.llen("queue:default") == 1


def test_keyword_arguments_are_refused_with_what_to_do_instead(client: Client, r: redis.Redis) -> None:
    # When a job is called with keyword arguments, which Sidekiq's JSON has no place for
    for call, what in ((lambda: build.perform_async(1, format="pdf"), "perform_async"),
                       (lambda: build.perform_in(5, 1, format="pdf"), "perform_in"),
                       (lambda: Export.perform_async(1, formats=["pdf"]), "perform_async")):
        with pytest.raises(TypeError) as caught:
            call()
        # Then the message says so and shows the dict to pass instead
        assert "Sidekiq's job format has no keyword arguments" in str(caught.value)
        assert f"e.g. {what}(..., {{'format" in str(caught.value)
    assert r.dbsize() == 0
    # And the advice works
    build.perform_async(1, {"format": "pdf"})
    assert json.loads(r.lindex("queue:reports", 0))["args"] == [1, {"format": "pdf"}]


# --- options --------------------------------------------------------------------------------------------

BAD_OPTIONS = [
    ({"retry": "five"}, "retry must be True, False or a number of retries >= 0, got 'five'"),
    ({"retry": -1}, "retry must be"),
    ({"retry": 2.5}, "retry must be"),
    ({"backtrace": "yes"}, "backtrace must be"),
    ({"dead": "no"}, "dead must be True or False"),
    ({"retry_for": -5}, "retry_for must be a number of seconds"),
    ({"tags": "billing"}, "tags must be a list of strings"),
    ({"queue": "my queue"}, "queue must be a queue name (letters, digits, _ : . -), got 'my queue'"),
    ({"retry_queue": "low/priority"}, "retry_queue must be a queue name"),
    ({"lock": "until_sunset"}, "unknown lock 'until_sunset'"),
    ({"lock": "until_executed", "on_conflict": "explode"}, "unknown on_conflict 'explode'"),
    ({"lock": "until_executed", "lock_ttl": "soon"}, "lock_ttl must be a number of seconds"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_job_options_fail_when_the_job_is_defined(options: dict[str, Any], message: str) -> None:
    # A function job and a class job alike fail at definition (import time), not at the first push
    with pytest.raises(TypeError) as caught:
        pyq.job(name="Callers::Bad", **options)(lambda: None)
    assert message in str(caught.value)
    with pytest.raises(TypeError) as caught:
        type("Bad", (pyq.Job,), {"perform": lambda self: None, **options})
    assert message in str(caught.value)


def test_bad_per_call_options_fail_at_set() -> None:
    with pytest.raises(TypeError, match=r"Callers::Build\.set\(\): retry must be"):
        build.set(retry="five")
    with pytest.raises(TypeError, match=r"Callers::Build\.set\(\): queue must be a queue name"):
        build.set(queue="no such queue")


# --- pyq enqueue ----------------------------------------------------------------------------------------

JOBS_MODULE = '''
import json, os
import redis
import pyq

@pyq.job(name="Reports::Build", queue="reports", retry=3)
def build(report_id: int, options: dict | None = None) -> None:
    redis.Redis.from_url(os.environ["PYQ_REDIS_URL"]).rpush("test:built", json.dumps([report_id, options]))
'''


def pyq_cli(cwd: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``pyq`` command in ``cwd``."""
    env = {**os.environ, "PYQ_REDIS_URL": redis_url,
           "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "pyq", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


def test_pyq_enqueue_uses_the_declared_queue_and_options_and_checks_the_arguments(
        tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    (tmp_path / "reportjobs.py").write_text(JOBS_MODULE)
    # When CLASS is a pyq job of a -r module and the arguments do not fit, Then nothing is pushed and it exits 2
    bad = pyq_cli(tmp_path, redis_url, "-r", "reportjobs", "enqueue", "Reports::Build", "[1, {}, 3]")
    assert bad.returncode == RET_USAGE
    assert "Reports::Build(report_id, options=None) cannot take args [1, {}, 3]" in bad.stderr
    assert r.dbsize() == 0
    # When they fit, Then the job lands on its declared queue with its declared options
    done = pyq_cli(tmp_path, redis_url, "-r", "reportjobs", "enqueue", "Reports::Build", '[7, {"format": "pdf"}]')
    assert done.returncode == 0, done.stderr
    job = json.loads(r.lindex("queue:reports", 0))
    assert (job["jid"], job["retry"], job["args"]) == (done.stdout.strip(), 3, [7, {"format": "pdf"}])
    # And -q still overrides the queue; a class pyq does not know (a Ruby job) goes to "default"
    other_queue = pyq_cli(tmp_path, redis_url, "-r", "reportjobs", "enqueue", "Reports::Build", "[8]", "-q", "x")
    assert other_queue.returncode == 0
    assert pyq_cli(tmp_path, redis_url, "enqueue", "Ruby::Job", "[1]").returncode == 0
    assert (r.llen("queue:x"), r.llen("queue:default")) == (1, 1)
    # And a pool serving the declared queue runs it
    with running_pool(tmp_path, redis_url, require=["reportjobs"], queues=["reports"], processes=1):
        wait_until(lambda: r.llen("test:built") == 1)
    assert json.loads(r.lindex("test:built", 0)) == [7, {"format": "pdf"}]


def test_the_pool_warns_at_start_about_declared_queues_it_does_not_serve(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "reportjobs.py").write_text(JOBS_MODULE)
    # Given a pool that serves "default" only, with a job declared on "reports"
    with running_pool(tmp_path, redis_url, require=["reportjobs"], queues=["default"], processes=1):
        log = tmp_path / "pool.log"
        wait_until(lambda: "pyq starting" in log.read_text())
    # Then it says so once, naming the queue, the job and how to serve it
    lines = [line for line in log.read_text().splitlines() if "is not served by this pool" in line]
    assert len(lines) == 1
    assert "queue reports is not served by this pool, yet job(s) Reports::Build are declared on it" in lines[0]
    assert "-q reports" in lines[0]


# --- the README's example ---------------------------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_blocks(heading: str) -> tuple[str, str]:
    """The ``python`` block and the ``text`` block it prints, in the README section ``heading``."""
    section = README.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    output = section.split("```text\n", 1)[1].split("```", 1)[0]
    return code, output


def test_the_readme_checked_calls_example_prints_what_it_shows(client: Client, r: redis.Redis,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Given the README's example, run as the module app.jobs
    code, shown = readme_blocks("Checked calls")
    exec(compile(code, "README.md", "exec"), {"__name__": "app.jobs"})
    printed = capsys.readouterr().out.splitlines()
    # Then it prints pyq's messages as shown (Python's own reason after "cannot take args []:" aside)
    assert len(printed) == len(shown.splitlines()) == 2
    for out, doc in zip(printed, shown.splitlines(), strict=True):
        head, owned, _ = doc.partition("cannot take args []")
        assert out.startswith(head + owned) if owned else out == doc
    # And only the good call was pushed
    [job] = [json.loads(raw) for raw in r.lrange("queue:reports", 0, -1)]
    assert (job["class"], job["args"]) == ("app.jobs.build_report", [7, {"format": "pdf"}])
