"""Jobs for the batch tests, run in real pyq processes (``require: [batchjobs]``).

Each job records in the test Redis (``PYQ_REDIS_URL``) what it did; each callback records, at the
moment it runs, what the batch and its jobs looked like, so the tests can check when it fired.
"""

from __future__ import annotations

import json
import time

import pyq
from workerjobs import conn


@pyq.job(name="BatchWork", retry_on={RuntimeError: {"attempts": 5, "wait": 0}})
def batch_work(i: int, failures: int, seconds: float = 0.0) -> None:
    """Fails its first ``failures`` runs; each run marks test:attempted, a success test:succeeded."""
    attempt = conn().incr(f"test:attempts:{i}")
    conn().sadd("test:attempted", i)
    if seconds:
        time.sleep(seconds)
    if attempt <= failures:
        raise RuntimeError(f"job {i} fails its run {attempt}")
    conn().sadd("test:succeeded", i)


@pyq.job(name="BatchDies", retry=False)
def batch_dies(i: int) -> None:
    conn().sadd("test:attempted", i)
    raise ValueError(f"job {i} always fails")


@pyq.job(name="BatchResult", result_ttl=600)
def batch_result(i: int) -> int:
    return i * i


@pyq.job(name="BatchCallback")
def batch_callback(tag: str) -> None:
    """Records one run: its jid (a fire), the batch's status and the jobs' state at that moment."""
    ctx = pyq.current()
    callback = ctx.batch_callback
    status = callback.status()
    r = conn()
    r.rpush(f"test:fired:{tag}", json.dumps({
        "jid": ctx.jid, "event": callback.event, "bid": callback.bid, "at": time.time(),
        "pending": status.pending, "failures": status.failures, "total": status.total,
        "attempted": r.scard("test:attempted"), "succeeded": r.scard("test:succeeded"),
        "in_batch": ctx.job.get("bid"), "enqueued_at": ctx.job.get("enqueued_at"),
    }))


@pyq.job(name="BatchSumResults")
def batch_sum_results(tag: str) -> None:
    """A success callback that reads its jobs' results."""
    found = pyq.current().batch_callback.status().results()
    conn().set(f"test:sum:{tag}", sum(found.values()))
    conn().set(f"test:results:{tag}", len(found))


@pyq.job(name="BatchFanOut")
def batch_fan_out(tag: str, n: int) -> None:
    """A job of a batch that opens a child batch of ``n`` jobs inside its own batch."""
    with pyq.current().batch, pyq.Batch(f"child of {tag}", on_success=(batch_callback, [f"{tag}-child"])):
        batch_work.perform_bulk([[1000 + i, 0, 0.01] for i in range(n)])
    conn().sadd("test:attempted", f"fan-{tag}")


@pyq.job(name="BatchAddsMore")
def batch_adds_more(n: int) -> None:
    """A job of a batch that pushes ``n`` more jobs into it."""
    with pyq.current().batch:
        for i in range(n):
            batch_work.perform_async(2000 + i, 0, 0.02)
