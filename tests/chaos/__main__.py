"""``python -m tests.chaos --jobs N --kill-every S --duration D [--cluster]``: one chaos run on fresh Redis
servers (with ``--cluster``, the queues on a fresh 3-primary Redis Cluster)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import ChaosRun, Plan


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--kill-every", type=float, default=2.0, help="seconds between SIGKILLs")
    p.add_argument("--duration", type=float, default=1800.0, help="hard bound on the run, seconds")
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=5)
    p.add_argument("--sleep-ms", type=float, default=5.0, help="work per job")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-kills", type=int, help="stop killing after this many")
    p.add_argument("--cluster", action="store_true", help="queues on a 3-primary Redis Cluster")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    from cluster import ClusterServers
    from conftest import RedisServer

    a = parse(argv)
    plan = Plan(a.jobs, a.kill_every, a.duration, a.processes, a.concurrency, a.sleep_ms, a.seed, a.max_kills)
    workdir = Path(tempfile.mkdtemp(prefix="pyq-chaos-"))
    queue = ClusterServers().start() if a.cluster else RedisServer().start()
    results = RedisServer().start()
    try:
        report = ChaosRun(plan, queue.url, results.url, workdir, cluster=a.cluster).run()
    finally:
        queue.stop()
        results.stop()
        if isinstance(queue, RedisServer):
            shutil.rmtree(queue.dir, ignore_errors=True)
        shutil.rmtree(results.dir, ignore_errors=True)
    print(json.dumps(report.summary(), indent=2))
    print(f"pool log: {workdir / 'chaos.log'}")
    return 0 if not (report.lost or report.unfinished or report.unexplained_duplicates) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
