"""The cost of a limiter per job: W1 (drain, 2 pyq processes x 10 threads) of a job under each limiter,
sized never to be full, against the same job without one, in the same run, alternating.

``python bench/limits.py [--n 20000] [--repeat 3]`` prints, per kind, the drain rate, worker CPU and
Redis commands per job, and the ratio of each against the unlimited job (medians of the repetitions).
A limited job runs one more script before it starts (the check) and, for a concurrent limiter, one
after (the release); the figures say what that costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from procs import RedisServer
from systems import PYQ
from workloads import Rig, start_workers, w1

#: Job class -> what it is limited by (the bodies are in jobs.py).
JOBS = {"BenchJob": "none", "BenchConcurrentJob": "concurrent", "BenchWindowJob": "window",
        "BenchBucketJob": "bucket", "BenchLeakyJob": "leaky"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=20_000, help="jobs per drain")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians are shown)")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {job: [] for job in JOBS}
    with ExitStack() as stack:
        out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pyq-bench-limits-")))
        queue, counter = RedisServer(str(out / "redis-queue.log")), RedisServer(str(out / "redis-counter.log"))
        stack.callback(queue.stop)
        stack.callback(counter.stop)
        rig = Rig(queue, counter, out, queue.url)
        group = start_workers(PYQ, rig, "limits-pyq")
        stack.callback(group.stop)
        for rep in range(args.repeat):
            for job in JOBS:  # alternate, so a change in the machine's load hits every kind alike
                runs[job].append(w1(rig, group, args.n, job))
                print(f"rep {rep + 1} {JOBS[job]:<10} {runs[job][-1]['rate']:>8.0f} jobs/s", file=sys.stderr)
    print(report(runs))
    return 0


def report(runs: dict[str, list[dict[str, float]]]) -> str:
    med = {job: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for job, rs in runs.items()}
    base = med["BenchJob"]
    lines = ["| limiter | jobs/s | x unlimited | worker CPU ms/1k jobs | x unlimited | Redis cmds/job "
             "| Redis CPU us/job |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for job, kind in JOBS.items():
        m = med[job]
        lines.append(f"| {kind} | {m['rate']:.0f} | {m['rate'] / base['rate']:.2f} | {m['cpu_ms_per_1k']:.0f} | "
                     f"{m['cpu_ms_per_1k'] / base['cpu_ms_per_1k']:.2f} | {m['cmds_per_job']:.1f} | "
                     f"{m['redis_cpu_us']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
