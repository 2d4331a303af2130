"""Scale run: 1, 2, 4 and 8 pools (one "host" each) against one Redis; what each job costs Redis.

``python bench/scale.py [--n 20000] [--pools 1,2,4,8] [--repeat 1] [--push bulk|single]`` prints a
table. Per run a fresh redis-server is started; N pools (``pyq -C``, 1 worker process x 10 threads each, ``hostname:
host-I``) start and register; their idle traffic is counted for a few seconds; then one client pushes
``--n`` no-op jobs, with ``push_bulk`` (1,000 a call) or one ``push`` each (``--push single``, where the
one pushing thread is the limit on throughput), and the clock runs until ``stat:processed`` reaches ``--n``.

Redis CPU per job = the change of ``used_cpu_user + used_cpu_sys`` (INFO cpu) over the run, divided by
the jobs; commands per job = the change of ``total_commands_processed`` (every command, those run inside
Lua scripts too), and script calls per job = the change of EVALSHA/EVAL calls in ``INFO commandstats``.
All include the enqueue and the pools' heartbeats and polls during the run. Ratios are against 1 pool
measured in the same invocation. All pools share this machine's cores, so throughput here says how far
one box goes; the Redis cost per job is what carries over to bigger fleets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from procs import Group, RedisServer  # noqa: E402

import pyq  # noqa: E402

#: Seconds the idle pools are watched before the jobs are pushed.
IDLE_S = 3.0


def redis_counters(conn: redis.Redis) -> tuple[float, int, int]:
    """(CPU seconds, commands, script calls) of the server so far."""
    cpu = conn.info("cpu")
    stats = conn.info("stats")
    scripts = sum(int(v["calls"]) for k, v in conn.info("commandstats").items() if k in ("cmdstat_evalsha",
                                                                                          "cmdstat_eval"))
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), int(stats["total_commands_processed"]), scripts


def start_pools(server: RedisServer, count: int, run_dir: Path) -> Group:
    commands = []
    for i in range(count):
        cfg = run_dir / f"pool-{i}.yml"
        cfg.write_text(yaml.safe_dump({"redis_url": server.url, "processes": 1, "concurrency": 10,
                                       "queues": ["default"], "require": ["jobs"], "log_level": "warning",
                                       "hostname": f"host-{i}"}))
        commands.append([sys.executable, "-m", "pyq", "-C", str(cfg)])
    path = os.pathsep.join([str(BENCH), str(BENCH.parent / "src"), os.environ.get("PYTHONPATH", "")])
    group = Group(commands, {**os.environ, "PYTHONPATH": path}, str(BENCH), str(run_dir / "pools.log"))
    deadline = time.monotonic() + 60
    while server.client.scard("processes") < count:
        if time.monotonic() > deadline or not group.alive():
            group.stop()
            raise RuntimeError(f"{count} pools did not register; see {run_dir / 'pools.log'}")
        time.sleep(0.05)
    return group


def push(client: pyq.Client, n: int, mode: str) -> None:
    if mode == "single":
        for x in range(n):
            client.push({"class": "NoopJob", "args": [x]})
        return
    for i in range(0, n, 1000):
        client.push_bulk({"class": "NoopJob", "args": [[x] for x in range(i, min(i + 1000, n))]})


def one_run(pools: int, n: int, mode: str) -> dict[str, float]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"pyq-scale-{pools}-"))
    server = RedisServer(str(run_dir / "redis.log"))
    group = start_pools(server, pools, run_dir)
    try:
        conn = server.client
        idle_before = redis_counters(conn)
        time.sleep(IDLE_S)
        idle_after = redis_counters(conn)
        before = redis_counters(conn)
        started = time.monotonic()
        push(pyq.Client(server.url), n, mode)
        while int(conn.get("stat:processed") or 0) < n:
            if time.monotonic() - started > 600:
                raise RuntimeError(f"{pools} pools did not finish {n} jobs in 600 s")
            time.sleep(0.002)
        wall_s = time.monotonic() - started
        after = redis_counters(conn)
    finally:
        group.stop()
        server.stop()
    return {"jobs_per_s": n / wall_s, "cpu_us_per_job": (after[0] - before[0]) / n * 1e6,
            "cmds_per_job": (after[1] - before[1]) / n, "script_calls_per_job": (after[2] - before[2]) / n,
            "idle_cmds_per_s": (idle_after[1] - idle_before[1]) / IDLE_S,
            "idle_cpu_ms_per_s": (idle_after[0] - idle_before[0]) / IDLE_S * 1000}


def table(results: dict[int, dict[str, float]]) -> str:
    base = results[min(results)]
    lines = ["| pools | jobs/s | vs 1 pool | Redis CPU µs/job | vs 1 pool | commands/job | script calls/job "
             "| idle cmds/s | idle Redis CPU ms/s |", "|---|---|---|---|---|---|---|---|---|"]
    for pools, r in sorted(results.items()):
        lines.append(f"| {pools} | {r['jobs_per_s']:,.0f} | {r['jobs_per_s'] / base['jobs_per_s']:.2f}x "
                     f"| {r['cpu_us_per_job']:.1f} | {r['cpu_us_per_job'] / base['cpu_us_per_job']:.2f}x "
                     f"| {r['cmds_per_job']:.2f} | {r['script_calls_per_job']:.3f} "
                     f"| {r['idle_cmds_per_s']:.1f} | {r['idle_cpu_ms_per_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="jobs per run")
    parser.add_argument("--pools", default="1,2,4,8", help="pool counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs per pool count (medians)")
    parser.add_argument("--push", choices=("bulk", "single"), default="bulk", help="push_bulk or one push a job")
    args = parser.parse_args()
    results: dict[int, dict[str, float]] = {}
    for pools in (int(p) for p in args.pools.split(",")):
        runs = [one_run(pools, args.n, args.push) for _ in range(args.repeat)]
        results[pools] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(f"{pools} pool(s): {results[pools]}", file=sys.stderr)
    print(f"{args.n:,} no-op jobs per run ({args.push} push), {args.repeat} run(s) each, {os.cpu_count()} CPU(s)\n")
    print(table(results))


if __name__ == "__main__":
    main()
