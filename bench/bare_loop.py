"""The reference point, not a product: the least a Python process speaking Sidekiq's format can do per job.

``python bare_loop.py`` loops BRPOP ``queue:default`` -> ``json.loads`` -> call
the job by class name, one thread, nothing else: no in-flight list, no acks,
no retries, no heartbeat, no stats. A job that raises is lost.
"""

from __future__ import annotations

import json
import os

import redis
from jobs import COUNTER_URL, READY_KEY, record

JOBS = {"BenchJob": record}


def main() -> None:
    conn = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    redis.Redis.from_url(COUNTER_URL).incr(READY_KEY)
    while True:
        item = conn.brpop(["queue:default"], timeout=2)
        if item is not None:
            job = json.loads(item[1])
            JOBS[job["class"]](*job["args"])


if __name__ == "__main__":
    main()
