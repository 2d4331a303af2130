"""pyq on a 3-primary Redis Cluster next to pyq on one Redis, in the same run.

For each shape: enqueue N no-op jobs with ``perform_bulk``, then start a pool (2 processes x 10
threads) and time the drain, from its start to ``stat:processed`` reaching N (pool start-up
included, the same on both). Redis CPU per job is the utime+stime every server process used over the
drain, commands per job come from ``INFO commandstats`` summed over the nodes, pool CPU per job is what
the supervisor and its workers used (start-up included). Each shape runs
``--reps`` times (default 3); the table shows medians and the cluster's ratio to one Redis.

    python bench/cluster_bench.py [--jobs 20000] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import yaml

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import pyq  # noqa: E402
from cluster import ClusterServers  # noqa: E402
from conftest import RedisServer  # noqa: E402
from pool import child_pids, kill_group  # noqa: E402
from pyq.keys import Keys  # noqa: E402

JOBS_MODULE = '''
import pyq


@pyq.job(name="ClusterBenchJob")
def noop(i: int) -> None:
    """Does nothing: the run measures pyq and Redis."""
'''
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def commands(ports: list[int]) -> int:
    """Commands every node has run (those inside Lua included), INFO and friends left out."""
    total = 0
    for port in ports:
        for name, stat in redis.Redis(port=port).info("commandstats").items():
            if name.split("_", 1)[1].split("|")[0] not in ("info", "ping", "client", "cluster", "config", "hello",
                                                           "command", "flushall", "script"):
                total += int(stat["calls"])
    return total


def one_run(shape: str, servers: Any, jobs: int, workdir: Path) -> dict[str, float]:
    cluster = shape == "cluster"
    nodes = servers.nodes if cluster else [servers]
    for node in nodes:
        redis.Redis(port=node.port).flushall()
        redis.Redis(port=node.port).config_resetstat()
    client = pyq.Client(servers.url, cluster=cluster)
    job = pyq.job(name="ClusterBenchJob")(lambda i: None).set(client=client)
    started = time.perf_counter()
    job.perform_bulk([(i,) for i in range(jobs)])
    enqueue_s = time.perf_counter() - started
    stats = client.redis
    processed = Keys(cluster=cluster).stat("processed")
    config = {"redis_url": servers.url, "cluster": cluster, "processes": 2, "concurrency": 10,
              "queues": ["default"], "require": ["cluster_bench_jobs"], "log_level": "warning"}
    (workdir / "pool.yml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(workdir), os.environ.get("PYTHONPATH", "")))}
    cpu_before = sum(cpu_s(node.proc.pid) for node in nodes)
    commands_before = commands([node.port for node in nodes])
    started = time.perf_counter()
    with open(workdir / "pool.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pyq", "-C", str(workdir / "pool.yml")], env=env,
                                cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while int(stats.get(processed) or 0) < jobs:
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"{shape}: the drain did not finish (see {workdir / 'pool.log'})")
            time.sleep(0.005)
        drain_s = time.perf_counter() - started
        cpu = sum(cpu_s(node.proc.pid) for node in nodes) - cpu_before
        sent = commands([node.port for node in nodes]) - commands_before
        pool_cpu = sum(cpu_s(pid) for pid in (proc.pid, *child_pids(proc.pid)))
    finally:
        kill_group(proc)
        client.redis.close()
    return {"enqueue_per_s": jobs / enqueue_s, "drain_per_s": jobs / drain_s,
            "redis_cpu_us_per_job": cpu / jobs * 1e6, "commands_per_job": sent / jobs,
            "pool_cpu_us_per_job": pool_cpu / jobs * 1e6}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="pyq-cluster-bench-"))
    (workdir / "cluster_bench_jobs.py").write_text(JOBS_MODULE)
    single, cluster = RedisServer().start(), ClusterServers().start()
    runs: dict[str, list[dict[str, float]]] = {"single": [], "cluster": []}
    try:
        for _ in range(args.reps):  # interleaved, so that other load on the machine hits both alike
            for shape, servers in (("single", single), ("cluster", cluster)):
                runs[shape].append(one_run(shape, servers, args.jobs, workdir))
    finally:
        single.stop()
        cluster.stop()
    medians = {shape: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for shape, rs in runs.items()}
    print(f"{args.jobs} no-op jobs, pool of 2 processes x 10 threads, median of {args.reps}")
    print(f"{'':24}{'one Redis':>12}{'cluster (3)':>14}{'ratio':>8}")
    for key, label in (("enqueue_per_s", "enqueue, jobs/s"), ("drain_per_s", "drain, jobs/s"),
                       ("redis_cpu_us_per_job", "Redis CPU, us/job"), ("commands_per_job", "commands/job"),
                       ("pool_cpu_us_per_job", "pool CPU, us/job")):
        one, many = medians["single"][key], medians["cluster"][key]
        print(f"{label:24}{one:>12.1f}{many:>14.1f}{many / one:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
