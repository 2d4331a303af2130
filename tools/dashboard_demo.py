"""Demo data for the dashboard: a little of everything it shows, written straight into a Redis.

Used by ``tools/screenshots.py`` and by the dashboard's tests. Writes Sidekiq's
own layout (queues, sets, process hashes, per-day stats, ``j|`` metrics, a
sidekiq-cron entry, a batch), so what it shows is what a live system shows.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from pyq import payload
from pyq.batch import Batch
from pyq.client import Client
from pyq.cron import CronJob, CronStore
from pyq.job_progress import Reporter
from pyq.keys import Keys
from pyq.limiter import concurrent, window
from pyq.metrics.execution import hash_keys

BACKTRACE = ["app/jobs/report.py:42:in `build'", "app/jobs/report.py:17:in `perform'",
             "pyq/processor.py:120:in `run'"]
IDENTITY = "web-1:4242:0a1b2c3d"


def job(jid: str, klass: str, queue: str = "default", **fields: Any) -> dict[str, Any]:
    return {"class": klass, "args": fields.pop("args", [jid, 1]), "queue": queue, "jid": jid, "retry": True,
            "created_at": fields.pop("created_at", time.time() - 3600), **fields}


def failed(jid: str, klass: str, now_s: float, *, plain: bool = False, **fields: Any) -> dict[str, Any]:
    """A failed job; its backtrace stored compressed (Sidekiq 7) or, with ``plain``, as a list (older)."""
    trace = BACKTRACE if plain else payload.encode_backtrace(BACKTRACE)
    fields = {"error_class": "ReportError", "error_message": f"report {jid} failed: <timeout>",
              "error_backtrace": trace, "failed_at": now_s - 1800, "retried_at": now_s - 60, "retry_count": 2,
              **fields}
    return job(jid, klass, **fields)


def seed(redis: Any, now_s: float | None = None, keys: Keys | None = None) -> None:
    """Queues, retries, scheduled, dead, a busy process, a week of history, metrics, cron, limiters and a batch."""
    now_s = time.time() if now_s is None else now_s
    keys = keys or Keys()
    pipe = redis.pipeline(transaction=False)
    for queue, count in (("default", 40), ("mail", 3), ("reports", 1)):
        pipe.sadd(keys.queues, queue)
        for n in range(count):
            pipe.lpush(keys.queue(queue), json.dumps(job(f"{queue}-{n}", "SendMail" if queue == "mail" else "Tidy",
                                                         queue, enqueued_at=now_s - 30 + n)))
    for n, level in enumerate((10, 5, -5)):  # mail's jobs with a priority, scored as lua/includes/push_prio.lua does
        pipe.zadd(keys.prio("mail"), {json.dumps(job(f"mail-urgent-{n}", "SendMail", "mail", priority=level,
                                                     enqueued_at=now_s - 20 + n)): -level * 2**38 + n + 1})
    for n in range(30):
        pipe.zadd(keys.retry, {json.dumps(failed(f"retry-{n}", "BuildReport", now_s, plain=n % 2 == 1)):
                               now_s + 60 * (n + 1)})
    for n in range(5):
        pipe.zadd(keys.schedule, {json.dumps(job(f"later-{n}", "Remind", "mail")): now_s + 3600 * (n + 1)})
    for n in range(3):
        pipe.zadd(keys.dead, {json.dumps(failed(f"dead-{n}", "ImportFeed", now_s, retry_count=25)): now_s - 600 * n})
    info = {"hostname": "web-1", "pid": 4242, "concurrency": 10, "queues": ["default", "mail", "reports"],
            "started_at": now_s - 7200, "tag": "app", "version": "pyq"}
    pipe.sadd(keys.processes, IDENTITY)
    pipe.hset(keys.process(IDENTITY), mapping={"info": json.dumps(info), "busy": 1, "beat": now_s, "quiet": "false",
                                               "rss": 81920, "concurrency": 10})
    pipe.hset(keys.process_work(IDENTITY), "tid-1", json.dumps(
        {"queue": "reports", "run_at": int(now_s - 12),
         "payload": json.dumps(job("busy-1", "BuildReport", "reports", args=["2026-Q4"]))}))
    today = datetime.fromtimestamp(now_s, timezone.utc).date()
    for n in range(30):
        day = (today - timedelta(days=n)).isoformat()
        pipe.set(keys.stat("processed", day), 1000 + 37 * ((n * 7) % 11))
        pipe.set(keys.stat("failed", day), 10 + 5 * ((n * 3) % 7))
    pipe.set(keys.stat("processed"), 123_456)
    pipe.set(keys.stat("failed"), 789)
    minute = hash_keys(keys, datetime.fromtimestamp(now_s, timezone.utc), "float")[0][0]
    pipe.hset(minute, mapping={"BuildReport|p": 120, "BuildReport|f": 4, "BuildReport|ms": 58_000,
                               "SendMail|p": 900, "SendMail|ms": 27_000})
    pipe.execute()
    Reporter(redis, keys, "busy-1").report(120, 400, "regions")
    CronStore(redis, keys).save(CronJob("nightly-report", "0 3 * * *", "BuildReport", "reports",
                                        description="the nightly report"), now_s)
    for limiter, uses in ((concurrent("payment-gateway", 5, lock_timeout=300), 2), (window("email", 100, 60), 7)):
        for _ in range(uses):
            limiter.try_acquire(redis, keys)
    client = Client(namespace=keys.namespace, connection=redis)
    with Batch("import of 3 feeds", client=client):
        for n in range(3):
            client.push({"class": "ImportFeed", "args": [n], "queue": "reports"})
