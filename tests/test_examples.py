"""Every example job runs for real: an in-process Worker (or a ``pyq`` pool) against the test Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from examples import csv_import, nightly_cleanup, payments, quote, report, resumable_import, welcome_email

import pyq
from pool import kill_group, wait_until
from pool import running_worker as real_worker
from pyq import cron
from pyq.client import Client
from pyq.keys import Keys

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = "examplehost:1:0123456789ab"
QUEUES = ["critical", "default", "low"]



@contextmanager
def running_worker(redis_url: str) -> Iterator[Any]:
    """A real Worker on the examples' queues."""
    with real_worker(redis_url, IDENTITY, concurrency=4, queues=QUEUES) as worker:
        yield worker


def jobs_in(r: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in r.zrange(key, 0, -1)]


# --- welcome_email ---------------------------------------------------------------------------------------

def test_welcome_email_is_sent_once_per_user(client: Client, r: redis.Redis) -> None:
    # Given sign-up code that enqueues the welcome email twice for user 42
    first = welcome_email.send_welcome_email.perform_async(42, "ada@example.com", "Ada")
    second = welcome_email.send_welcome_email.perform_async(42, "ada@example.com", "Ada")
    assert first and second == ""
    # When a worker runs
    with running_worker(client.url):
        wait_until(lambda: r.llen(welcome_email.OUTBOX_KEY) == 1)
        wait_until(lambda: not r.keys("uniquejobs:*:LOCKED"))
    # Then exactly one message went out, and the lock is gone so a deliberate resend is accepted
    [message] = welcome_email.outbox()
    assert message["to"] == "ada@example.com" and message["subject"] == "Welcome, Ada!"
    assert welcome_email.send_welcome_email.perform_async(42, "ada@example.com", "Ada")


def test_welcome_email_to_a_bad_address_waits_in_the_retry_set(client: Client, r: redis.Redis) -> None:
    welcome_email.send_welcome_email.perform_async(7, "not-an-address", "Bo")
    with running_worker(client.url):
        wait_until(lambda: r.zcard("retry") == 1)
    [job] = jobs_in(r, "retry")
    assert job["error_class"] == "ValueError" and "not-an-address" in job["error_message"]
    assert r.llen(welcome_email.OUTBOX_KEY) == 0


# --- csv_import ------------------------------------------------------------------------------------------

def write_csv(path: Path, rows: int) -> Path:
    lines = ["email,name,plan"] + [f"user{i}@example.com,User {i},free" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_import_fans_out_in_batches(client: Client, r: redis.Redis, tmp_path: Path) -> None:
    # Given a 250-row file and batches of 100
    path = write_csv(tmp_path / "users.csv", 250)
    csv_import.import_csv.perform_async(str(path), 100)
    # When a worker runs the import
    with running_worker(client.url):
        wait_until(lambda: r.hlen(csv_import.USERS_KEY) == 250)
        wait_until(lambda: int(r.get("stat:processed") or 0) == 4)
    # Then one reader job and three batch jobs ran, and every row is stored once, by email
    row = json.loads(r.hget(csv_import.USERS_KEY, "user249@example.com") or b"{}")
    assert row == {"email": "user249@example.com", "name": "User 249"}
    assert r.llen("queue:low") == 0 and r.zcard("retry") == 0


def test_csv_batches_refuse_a_file_without_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("mail,full_name\na@b.c,A\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        list(csv_import.batches(str(path), 10))
    assert [len(b) for b in csv_import.batches(str(write_csv(tmp_path / "ok.csv", 5)), 2)] == [2, 2, 1]


# --- nightly_cleanup -------------------------------------------------------------------------------------

def test_nightly_cleanup_runs_once_per_night_from_its_schedule(client: Client, r: redis.Redis) -> None:
    # Given sessions seen 40 days, 31 days and 1 hour ago, and the example's schedule in the store
    now = time.time()
    r.zadd(nightly_cleanup.SESSIONS_KEY, {"old": now - 40 * 86_400, "idle": now - 31 * 86_400, "fresh": now - 3600})
    jobs = cron.parse_schedule(nightly_cleanup.SCHEDULE, "examples.nightly_cleanup.SCHEDULE")
    cron.CronStore(r, Keys()).sync(jobs)
    # When two pollers look at the next 03:00:05 UTC
    three_am = datetime.now(timezone.utc).replace(hour=3, minute=0, second=5, microsecond=0).timestamp()
    three_am += 86_400 if three_am <= now else 0
    pollers = [cron.CronPoller(r, Keys(), client) for _ in range(2)]
    pushed = [p.tick(three_am) for p in pollers]
    # Then exactly one job was enqueued, and running it forgets the two idle sessions
    assert sorted(len(p) for p in pushed) == [0, 1]
    with running_worker(client.url):
        wait_until(lambda: r.zcard(nightly_cleanup.SESSIONS_KEY) == 1)
    assert r.zrange(nightly_cleanup.SESSIONS_KEY, 0, -1) == [b"fresh"]


# --- payments --------------------------------------------------------------------------------------------

def test_payments_retry_discard_and_success(client: Client, r: redis.Redis) -> None:
    # Given a good card, a declined card and a gateway timeout
    payments.charge.perform_async(1, 2599, "tok_visa")
    payments.charge.perform_async(2, 1000, "tok_declined")
    timeout_jid = payments.charge.perform_async(3, 500, "tok_timeout")
    with running_worker(client.url):
        wait_until(lambda: r.hlen(payments.ORDERS_KEY) == 2 and r.zcard("retry") == 1)
    # Then: paid; declined and discarded (no retry, no dead entry); the timeout waits ~3 s for its retry
    orders = {k.decode(): v.decode() for k, v in r.hgetall(payments.ORDERS_KEY).items()}
    assert orders == {"1": "paid ch_tok_visa_2599", "2": "declined"}
    assert r.zcard("dead") == 0
    [(raw, score)] = r.zrange("retry", 0, -1, withscores=True)
    job = json.loads(raw)
    assert job["jid"] == timeout_jid and job["retry_count"] == 0
    assert job["error_class"] == "examples.payments.GatewayTimeout"
    assert 3.0 <= score - float(job["failed_at"]) <= 3.0 * 1.15 + 0.01


def test_payments_out_of_attempts_marks_the_order_failed(client: Client, r: redis.Redis) -> None:
    # Given a timed-out charge on its fifth run (retry_count 3 becomes 4: 5 runs in all)
    client.push({"class": "examples.payments.charge", "args": [4, 100, "tok_timeout"], "queue": "critical",
                 "retry_count": 3, "failed_at": time.time() - 60})
    with running_worker(client.url):
        wait_until(lambda: r.zcard("dead") == 1)
    assert r.hget(payments.ORDERS_KEY, "4") == b"failed: GatewayTimeout"
    assert r.zcard("retry") == 0


# --- report ----------------------------------------------------------------------------------------------

def test_report_publishes_progress_then_the_result(client: Client, r: redis.Redis,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a report over four regions, recording the progress a status page would see before each one
    seen: list[int] = []
    real_total = report.region_total

    def observed(month: str, region: str) -> int:
        seen.append(report.report_progress(jid)["progress"])
        return real_total(month, region)

    monkeypatch.setattr(report, "region_total", observed)
    jid = report.SalesReport.perform_async("2024-05", ["north", "south", "east", "west"])
    assert report.report_progress(jid) == {"status": "queued", "progress": 0}
    # When it runs
    with running_worker(client.url):
        done = wait_until(lambda: (p := report.report_progress(jid))["status"] == "done" and p)
    # Then progress rose region by region, the result is stored, and the hash expires within a day
    assert seen == [0, 25, 50, 75]
    assert done["progress"] == 100
    assert done["result"]["totals"]["west"] == real_total("2024-05", "west")
    assert 0 < r.ttl(report.progress_key(jid)) <= report.PROGRESS_TTL_S


# --- all examples in a real pool -------------------------------------------------------------------------

@contextmanager
def pool(tmp_path: Path, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """``pyq`` run from the repository root with every example module, killed with its group afterwards."""
    modules = ["examples.welcome_email", "examples.csv_import", "examples.nightly_cleanup", "examples.payments",
               "examples.report"]
    args = [sys.executable, "-m", "pyq", "-c", "4", "-P", "1", "-t", "2", *(f"-r{m}" for m in modules),
            *(f"-q{q}" for q in QUEUES)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYQ_")}
    env.update(REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
    with open(tmp_path / "pool.log", "wb") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            yield proc
        finally:
            kill_group(proc)


def test_examples_run_in_a_pyq_pool_that_reads_redis_url(client: Client, r: redis.Redis, tmp_path: Path) -> None:
    # Given jobs from three examples, enqueued before the pool starts
    welcome_email.send_welcome_email.perform_async(1, "grace@example.com", "Grace")
    payments.charge.perform_async(9, 100, "tok_visa")
    jid = report.SalesReport.perform_async("2024-06", ["north"])
    # When a pool started with only REDIS_URL runs them, then gets TERM
    with pool(tmp_path, client.url) as proc:
        wait_until(lambda: report.report_progress(jid)["status"] == "done", timeout=20)
        wait_until(lambda: r.llen(welcome_email.OUTBOX_KEY) == 1 and r.hexists(payments.ORDERS_KEY, "9"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "pool.log").read_text()
    assert r.hget(payments.ORDERS_KEY, "9") == b"paid ch_tok_visa_100"


# --- quote (results) -------------------------------------------------------------------------------------

def test_a_quote_is_returned_to_the_caller_and_a_refusal_raises(client: Client, r: redis.Redis) -> None:
    with running_worker(client.url):
        handle = quote.shipping_quote.perform_async("SE", 2.5)
        assert handle.result(timeout=10) == {"country": "SE", "cents": 1450}
        refused = quote.shipping_quote.perform_async("XX", 1)
        with pytest.raises(pyq.JobFailed, match="no shipping to XX"):
            refused.result(timeout=10)
    assert (handle.status(), refused.status()) == ("done", "dead")


# --- resumable_import ------------------------------------------------------------------------------------

def test_resumable_import_survives_a_deploy_and_reports_progress(client: Client, r: redis.Redis,
                                                                  tmp_path: Path) -> None:
    # Given a 4,000-row file being imported by a pool
    path = write_csv(tmp_path / "users.csv", 4_000)
    jid = resumable_import.ImportUsers.perform_async(str(path))
    args = [sys.executable, "-m", "pyq", "-c", "2", "-P", "1", "-t", "10", "-rexamples.resumable_import", "-qlow"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYQ_")}, "REDIS_URL": client.url,
           "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))}

    log = open(tmp_path / "pool.log", "ab")  # noqa: SIM115 - shared by both pools, closed at the end

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    proc = start()
    try:
        wait_until(lambda: r.hlen(resumable_import.USERS_KEY) >= 200, timeout=30)
        # When a deploy stops the pool with TERM mid-file
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        during = pyq.progress(jid)
        stopped_at = r.hlen(resumable_import.USERS_KEY)
        assert r.hget(f"it-{jid}", "ex") == b"1" and r.llen("queue:low") == 1
        # and the new release's pool picks the job up
        proc = start()
        wait_until(lambda: not r.exists(f"it-{jid}"), timeout=60)
    finally:
        kill_group(proc)
        log.close()
    # Then every row is imported, the run resumed where it stopped, and the progress reads all done
    assert 0 < stopped_at < 4_000 and during is not None and during.total == 4_000
    assert r.hlen(resumable_import.USERS_KEY) == 4_000
    final = pyq.progress(jid)
    assert final is not None and (final.done, final.total) == (4_000, 4_000)


# --- parallel_import (batches) -----------------------------------------------------------------------------

def test_a_parallel_import_reports_once_every_slice_succeeded(client: Client, r: redis.Redis) -> None:
    from examples import parallel_import

    bid = parallel_import.import_all(42, list(range(1_050)))
    assert pyq.Batch.status(bid).pending == 11  # 11 slices of at most 100 ids, nothing run yet
    with running_worker(client.url):
        report = wait_until(lambda: r.hgetall(parallel_import.REPORT_KEY.format(42)), timeout=30)
    assert int(report[b"slices"]) == 11 and int(report[b"rows"]) == 1_050
    status = pyq.Batch.status(bid)
    assert status.success and status.description == "import 42"
