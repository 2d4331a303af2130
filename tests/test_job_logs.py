"""Every failure is visible, counted and named by its job, as a user meets it: a real ``pyq`` pool, a real
Redis, the real CLI.

- a job that raises logs its traceback as one WARN record, in text and JSON logs;
- ``pyq retry show`` / ``pyq dead show`` and the dashboard show the stored ``error_backtrace``;
- a ``-r`` module that fails to import prints its traceback (file and line) and exits 2;
- ``pyq_jobs_failed_total`` adds up to ``stat:failed``, jobs that never started included;
- ``pyq.current()`` inside function, class and async jobs, and the jid on the job's own log lines.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import free_port
from pool import running_pool, wait_until
from pyq import payload
from pyq.client import Client

JOBS = '''
import asyncio
import json
import logging
import os
import time

import redis

import pyq

log = logging.getLogger("app.jobs")


def record(key, value):
    redis.Redis.from_url(os.environ["PYQ_REDIS_URL"]).rpush(key, json.dumps(value))


def charge(order_id):
    raise RuntimeError(f"card declined for order {order_id}")


@pyq.job(name="Charge", retry=1, backtrace=True)
def charge_job(order_id):
    charge(order_id)


def me():
    ctx = pyq.current()
    return {"jid": ctx.jid, "name": ctx.name, "queue": ctx.queue, "retry_count": ctx.retry_count,
            "enqueued_at": ctx.enqueued_at, "created_at": ctx.created_at, "stopping": ctx.stopping}


@pyq.job(name="Whoami")
def whoami(token):
    log.info("working on %s", token)
    record("test:seen", {"token": token, **me()})


class WhoamiClass(pyq.Job, name="WhoamiClass"):
    def perform(self, token):
        log.info("working on %s", token)
        record("test:seen", {"token": token, **me()})


@pyq.job(name="WhoamiAsync")
async def whoami_async(token):
    await asyncio.sleep(0)
    log.info("working on %s", token)
    record("test:seen", {"token": token, **me()})


@pyq.job(name="Patient")
def patient(token):
    record("test:started", token)
    while not pyq.current().stopping:
        time.sleep(0.05)
    record("test:seen", {"token": token, **me()})


@pyq.job(name="Crash")
def crash(token):
    os._exit(1)  # the worker dies with the job in flight, every time
'''
#: The line of obsjobs.py that raises, which every traceback must point at.
RAISE_LINE = next(n for n, line in enumerate(JOBS.splitlines(), 1) if "raise RuntimeError" in line)


def jobs_module(tmp_path: Path) -> Path:
    path = tmp_path / "obsjobs.py"
    path.write_text(JOBS)
    return path


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "pool.log").read_text()


def json_records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_text(tmp_path).splitlines() if line.startswith("{")]


def seen(r: redis.Redis) -> dict[str, dict[str, Any]]:
    return {(v := json.loads(raw))["token"]: v for raw in r.lrange("test:seen", 0, -1)}


# --- item: every failure shows its traceback ---------------------------------------------------------------

@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failing_job_logs_its_traceback_in_one_warn_record(tmp_path: Path, r: redis.Redis, client: Client,
                                                             redis_url: str, log_format: str) -> None:
    # Given a pool logging in the chosen format, and a job on its second retry that raises
    jobs = jobs_module(tmp_path)
    with running_pool(tmp_path, redis_url, require=["obsjobs"], processes=1, log_format=log_format):
        jid = client.push({"class": "Charge", "args": [7], "retry": 1, "retry_count": 0})
        # When it has failed and is stored as dead (retry=1 is used up)
        wait_until(lambda: r.zcard("dead") == 1)
        wait_until(lambda: "fail: RuntimeError" in log_text(tmp_path))
    where = f'File "{jobs}", line {RAISE_LINE}, in charge'
    if log_format == "json":
        # Then exactly one record carries the traceback: the WARN "fail" line, with the job's fields
        with_trace = [rec for rec in json_records(tmp_path) if "exc" in rec]
        assert len(with_trace) == 1, with_trace
        [rec] = with_trace
        assert rec["lvl"] == "WARN" and rec["msg"] == "fail: RuntimeError: card declined for order 7"
        assert where in rec["exc"] and rec["exc"].rstrip().endswith("RuntimeError: card declined for order 7")
        assert (rec["jid"], rec["class"], rec["queue"], rec["retry_count"]) == (jid, "Charge", "default", 0)
        assert isinstance(rec["elapsed_ms"], float) and rec["elapsed_ms"] >= 0
        start = next(x for x in json_records(tmp_path) if x["msg"] == "start")
        assert (start["jid"], start["class"], start["queue"]) == (jid, "Charge", "default")
    else:
        # Then the WARN line names the job Sidekiq's way, and the traceback follows it
        lines = log_text(tmp_path).splitlines()
        [at] = [i for i, line in enumerate(lines) if " WARN: fail: RuntimeError" in line]
        assert f" class=Charge jid={jid} elapsed=" in lines[at]
        assert lines[at + 1] == "Traceback (most recent call last):"
        following = "\n".join(lines[at + 1:at + 40])
        assert where in following and "RuntimeError: card declined for order 7" in following
        assert log_text(tmp_path).count("Traceback (most recent call last)") == 1


def test_retry_show_dead_show_and_the_dashboard_show_the_backtrace(tmp_path: Path, r: redis.Redis, client: Client,
                                                                   redis_url: str) -> None:
    # Given a job pushed with `backtrace: true` that failed once in a real pool (now in the retry set)
    jobs_module(tmp_path)
    with running_pool(tmp_path, redis_url, require=["obsjobs"], processes=1):
        jid = client.push({"class": "Charge", "args": [8], "backtrace": True})
        wait_until(lambda: r.zcard("retry") == 1)
    # And a dead entry in the plain-array format older Sidekiq versions wrote
    r.zadd("dead", {json.dumps({"class": "Old", "args": [], "jid": "old1", "error_message": "x",
                                "error_backtrace": ["app/old.rb:3:in `perform'"]}): time.time()})
    # When `pyq retry show` / `pyq dead show` print them
    shown = json.loads(pyq_cli(redis_url, "retry", "show", jid).stdout)
    old = json.loads(pyq_cli(redis_url, "dead", "show", "old1").stdout)
    # Then the decoded backtrace is there, innermost call first, as Sidekiq stores it
    assert shown["backtrace"][0] == f"{tmp_path / 'obsjobs.py'}:{RAISE_LINE}:in `charge'"
    assert shown["backtrace"][1].endswith(":in `charge_job'")
    assert payload.decode_backtrace(shown["job"]["error_backtrace"]) == shown["backtrace"]
    assert old["backtrace"] == ["app/old.rb:3:in `perform'"]
    # And the dashboard's job pages show it under the job's error
    keys = [f"{name}&key=" + urllib.parse.quote(f"{r.zrange(name, 0, 0, withscores=True)[0][1]!r}|{one}")
            for name, one in (("retry", jid), ("dead", "old1"))]
    retry_page, dead_page = dashboard_pages(tmp_path, redis_url, [f"/job?set={key}" for key in keys])
    assert f"obsjobs.py:{RAISE_LINE}:in `charge&#x27;" in retry_page and "app/old.rb:3:in `perform&#x27;" in dead_page


def pyq_cli(redis_url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "pyq", *args], capture_output=True, text=True, timeout=30, cwd=cwd,
                          env={**os.environ, "PYQ_REDIS_URL": redis_url})
    return done


def dashboard_pages(tmp_path: Path, redis_url: str, paths: list[str]) -> list[str]:
    """The pages at ``paths`` that `pyq web` serves, fetched once it listens."""
    port = free_port()
    env = {**os.environ, "PYQ_REDIS_URL": redis_url, "PYQ_WEB_PASSWORD": "pw"}
    with open(tmp_path / "web.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pyq", "web", "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        def fetch(path: str) -> str | None:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
            request.add_header("Authorization", "Basic " + base64.b64encode(b"admin:pw").decode())
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    return resp.read().decode()
            except OSError:
                return None

        return [wait_until(lambda path=path: fetch(path), timeout=20, interval=0.1) for path in paths]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_a_require_module_that_fails_to_import_prints_its_traceback_and_exits_2(tmp_path: Path,
                                                                                redis_url: str) -> None:
    # Given a job module that raises at line 3 while importing, and a job module that does not exist
    (tmp_path / "brokenjobs.py").write_text("import os\n\nTOKEN = os.environ['NO_SUCH_SETTING_X']\n")
    # When the pool is started with each of them, in both log formats
    broken = pyq_cli(redis_url, "-r", "brokenjobs", cwd=tmp_path)
    broken_json = pyq_cli(redis_url, "-r", "brokenjobs", "--log-format", "json", cwd=tmp_path)
    missing = pyq_cli(redis_url, "-r", "nosuchjobs", cwd=tmp_path)
    # Then it exits 2 with the traceback of the failing line, without the import machinery's frames
    assert broken.returncode == broken_json.returncode == missing.returncode == 2, broken.stderr
    where = f'File "{tmp_path / "brokenjobs.py"}", line 3, in <module>'
    assert "require: cannot import 'brokenjobs': KeyError" in broken.stderr
    assert where in broken.stderr and "importlib" not in broken.stderr
    [rec] = [json.loads(line) for line in broken_json.stderr.splitlines() if line.startswith("{")]
    assert rec["lvl"] == "ERROR" and where in rec["exc"]
    # And a module that is simply not there is one line, no traceback
    assert "cannot import 'nosuchjobs'" in missing.stderr and "Traceback" not in missing.stderr


# --- item: metrics count what stats count ---------------------------------------------------------------

def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(got: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in got.items() if n == name)


def test_prometheus_failures_add_up_to_stat_failed(tmp_path: Path, r: redis.Redis, client: Client,
                                                   redis_url: str) -> None:
    jobs_module(tmp_path)
    port = free_port()
    with running_pool(tmp_path, redis_url, require=["obsjobs"], processes=2,
                      metrics={"port": port, "host": "127.0.0.1"}):
        # Given a job that kills its worker each time (alone, so no other job dies with it), buried at last
        client.push({"class": "Crash", "args": ["x"]})
        wait_until(lambda: r.zcard("dead") == 1, timeout=30)
        # And a job that raises, one of an unknown class, one with arguments its function cannot take,
        # a payload that is not a job, and one that succeeds
        client.push({"class": "Charge", "args": [1]})
        client.push({"class": "NoSuchJob", "args": []})
        client.push({"class": "Whoami", "args": ["a", "b"]})
        r.lpush("queue:default", b'{"class": "Whoami", "args": [')
        client.push({"class": "Whoami", "args": ["ok"]})
        # When the pool has settled them all
        wait_until(lambda: int(r.get("stat:failed") or 0) == 5 and int(r.get("stat:processed") or 0) == 6,
                   timeout=30)
        # Then the scraped failures equal stat:failed, each with its reason, and processed equals stat:processed
        got = wait_until(lambda: (g := scrape(port)) and total(g, "pyq_jobs_failed_total") == 5 and g, timeout=20)
    reasons = {dict(labels)["reason"]: v for (n, labels), v in got.items() if n == "pyq_jobs_failed_total" and v}
    assert reasons == {"error": 1, "unknown_class": 1, "bad_arguments": 1, "invalid_payload": 1, "worker_crashed": 1}
    assert total(got, "pyq_jobs_failed_total") == int(r.get("stat:failed"))
    assert total(got, "pyq_jobs_processed_total") == int(r.get("stat:processed"))
    failed = {dict(labels)["job"] for (n, labels), v in got.items() if n == "pyq_jobs_failed_total" and v}
    assert failed == {"Charge", "NoSuchJob", "Whoami", "pyq.InvalidPayload", "Crash"}


# --- item: the job knows itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("log_format", ["text", "json"])
def test_pyq_current_in_function_class_and_async_jobs_and_the_jid_on_their_log_lines(
        tmp_path: Path, r: redis.Redis, client: Client, redis_url: str, log_format: str) -> None:
    jobs_module(tmp_path)
    # Given a function job, a class job and an async job that read pyq.current() and log through logging
    pushed = {"f": {"class": "Whoami", "args": ["f"]},
              "c": {"class": "WhoamiClass", "args": ["c"], "queue": "low", "retry_count": 2},
              "a": {"class": "WhoamiAsync", "args": ["a"]}}
    jids = {token: client.push(item) for token, item in pushed.items()}
    # When a pool runs them
    with running_pool(tmp_path, redis_url, require=["obsjobs"], processes=1, queues=["default", "low"],
                      log_format=log_format):
        wait_until(lambda: len(seen(r)) == 3)
        wait_until(lambda: log_text(tmp_path).count("done") >= 3)
    # Then each saw its own jid, wire name, queue, retry count and times, and the worker was not stopping
    for token, ctx in seen(r).items():
        assert ctx["jid"] == jids[token] and ctx["name"] == pushed[token]["class"]
        assert ctx["queue"] == pushed[token].get("queue", "default")
        assert ctx["retry_count"] == pushed[token].get("retry_count")
        assert time.time() - 60 < ctx["created_at"] <= ctx["enqueued_at"] <= time.time()
        assert ctx["stopping"] is False
    # And every line a job wrote with logging.getLogger(...) carries that job's jid
    for token, jid in jids.items():
        if log_format == "json":
            [rec] = [x for x in json_records(tmp_path) if x["msg"] == f"working on {token}"]
            assert rec["logger"] == "app.jobs" and rec["jid"] == jid and rec["class"] == pushed[token]["class"]
        else:
            [line] = [x for x in log_text(tmp_path).splitlines() if x.endswith(f"INFO: working on {token}")]
            assert f" class={pushed[token]['class']} jid={jid} INFO:" in line


def test_a_long_job_sees_the_worker_stopping_and_finishes_early(tmp_path: Path, r: redis.Redis, client: Client,
                                                                 redis_url: str) -> None:
    jobs_module(tmp_path)
    # Given a job that runs until pyq.current().stopping
    with running_pool(tmp_path, redis_url, require=["obsjobs"], processes=1, timeout=20) as proc:
        jid = client.push({"class": "Patient", "args": ["p"]})
        wait_until(lambda: r.llen("test:started") == 1)
        # When the pool is told to stop
        proc.send_signal(signal.SIGTERM)
        # Then the job saw it, returned, and the pool exited well before the 20 s timeout
        assert proc.wait(15) == 0
    assert seen(r)["p"]["stopping"] is True and seen(r)["p"]["jid"] == jid
    assert r.llen("queue:default") == 0 and int(r.get("stat:processed")) == 1


# --- the README's example ---------------------------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_section(title: str) -> str:
    text = README.read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_readme_example_of_logs_and_pyq_current_runs_as_shown(tmp_path: Path, r: redis.Redis,
                                                                   redis_url: str, log_format: str) -> None:
    # Given the README's app/imports.py, and a file whose third line is empty
    section = readme_section("Logs, tracebacks and the running job")
    code, sample = section.split("```python\n", 1)[1].split("```", 1)[0], section.split("```\n", 1)[1]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "imports.py").write_text(code)
    (tmp_path / "data.csv").write_text("a,1\nb,2\n\nc,3\n")
    raise_line = next(n for n, line in enumerate(code.splitlines(), 1) if "raise ValueError" in line)
    assert f'imports.py", line {raise_line}, in import_file' in sample
    # When the pool runs one import, enqueued by the app as the README says
    with running_pool(tmp_path, redis_url, require=["app.imports"], processes=1, log_format=log_format):
        enqueue = "from app.imports import import_file; print(import_file.perform_async('data.csv'))"
        jid = subprocess.run([sys.executable, "-c", enqueue], cwd=tmp_path, capture_output=True, text=True,
                             check=True, timeout=30, env={**os.environ, "PYQ_REDIS_URL": redis_url}).stdout.strip()
        wait_until(lambda: r.zcard("retry") == 1)
        wait_until(lambda: "fail: ValueError" in log_text(tmp_path))
    # Then its own log line and its failure carry its jid, the failure with the traceback of the raising line
    where = f'File "{tmp_path / "app" / "imports.py"}", line {raise_line}, in import_file'
    if log_format == "json":
        mine = [rec for rec in json_records(tmp_path) if rec.get("jid") == jid]
        [info] = [rec for rec in mine if rec["logger"] == "app.imports"]
        assert info["msg"] == "importing data.csv from line 0 (retry_count None)" and info["queue"] == "default"
        [fail] = [rec for rec in mine if "exc" in rec]
        assert fail["lvl"] == "WARN" and fail["class"] == "app.imports.import_file" and where in fail["exc"]
        assert fail["msg"] == "fail: ValueError: data.csv: line 3 is empty" and "retry_count" not in fail
    else:
        lines = log_text(tmp_path).splitlines()
        prefix = f" class=app.imports.import_file jid={jid}"
        assert any(line.endswith(f"{prefix} INFO: importing data.csv from line 0 (retry_count None)")
                   for line in lines)
        assert any(f"{prefix} elapsed=" in line and "WARN: fail: ValueError: data.csv: line 3 is empty" in line
                   for line in lines)
        assert where in log_text(tmp_path)
    # And `pyq retry show` has the 10 stored backtrace lines' innermost one: the raising line
    shown = json.loads(pyq_cli(redis_url, "retry", "show", jid).stdout)
    assert shown["backtrace"][0] == f"{tmp_path / 'app' / 'imports.py'}:{raise_line}:in `import_file'"
