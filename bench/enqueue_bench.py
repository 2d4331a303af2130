"""Enqueue throughput of pyq next to Ruby Sidekiq's client, on one Redis started for the run.

Six ways to enqueue N jobs (default 20,000) with the same class and args:
pyq ``perform_async`` in a loop and ``perform_bulk`` (1000 per call), the same two
inside ``with pyq.Batch(...)``, Ruby ``perform_async`` in a loop and
``Sidekiq::Client.push_bulk`` (1000 per call).
Each runs ``--reps`` times (default 3) on an emptied database; the table shows
the median rate, the ratio to its peer (the Ruby client doing the same kind of push; for the pushes
inside a batch, the same pyq push outside one), and
Redis commands per job from ``INFO commandstats``: those the client sent, and
all of them including the ones run inside pyq's Lua script.

    python bench/enqueue_bench.py [--jobs 20000] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

import pyq

RUBY_SCRIPT = Path(__file__).resolve().parent / "ruby" / "enqueue_bench.rb"
#: Commands a client sends to set up or inspect a connection; not part of an enqueue.
SETUP_COMMANDS = ("hello", "client", "ping", "select", "info", "config", "flushall", "script")
#: Commands pyq's enqueue script runs inside Redis (counted by commandstats, never sent by pyq).
LUA_INNER = ("sadd", "lpush", "ltrim", "zadd", "hget", "hincrby", "expireat")


@pyq.job(name="BenchJob")
def bench_job(i: int, text: str) -> None:
    """The job every variant enqueues (never run here)."""


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="pyq-bench-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        conn = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                conn.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def pyq_loop(url: str, jobs: int) -> float:
    client = pyq.Client(url)
    client.redis.ping()
    configured = bench_job.set(client=client)
    started = time.perf_counter()
    for i in range(jobs):
        configured.perform_async(i, "payload")
    return time.perf_counter() - started


def pyq_bulk(url: str, jobs: int) -> float:
    client = pyq.Client(url)
    client.redis.ping()
    configured = bench_job.set(client=client)
    started = time.perf_counter()
    for start in range(0, jobs, 1000):
        configured.perform_bulk([(i, "payload") for i in range(start, min(start + 1000, jobs))])
    return time.perf_counter() - started


def in_batch(push: Callable[[str, int], float]) -> Callable[[str, int], float]:
    """The same pushes inside ``with pyq.Batch(...)``: each job becomes a member as it is pushed."""
    def run(url: str, jobs: int) -> float:
        with pyq.Batch("bench", client=pyq.Client(url)):
            return push(url, jobs)

    return run


def ruby(mode: str) -> Callable[[str, int], float]:
    def run(url: str, jobs: int) -> float:
        out = subprocess.run(["ruby", str(RUBY_SCRIPT), mode, str(jobs)], env={**os.environ, "REDIS_URL": url},
                             capture_output=True, text=True, timeout=600, check=True)
        return float(json.loads(out.stdout)["seconds"])

    return run


VARIANTS: dict[str, tuple[Callable[[str, int], float], str]] = {
    "pyq perform_async": (pyq_loop, "ruby perform_async"),
    "ruby perform_async": (ruby("perform_async"), "ruby perform_async"),
    "pyq perform_bulk": (pyq_bulk, "ruby push_bulk"),
    "ruby push_bulk": (ruby("push_bulk"), "ruby push_bulk"),
    "pyq perform_async, batch": (in_batch(pyq_loop), "pyq perform_async"),
    "pyq perform_bulk, batch": (in_batch(pyq_bulk), "pyq perform_bulk"),
}


def command_counts(conn: redis.Redis) -> tuple[int, int]:
    """(commands the client sent, all commands) since the last CONFIG RESETSTAT."""
    stats = {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in conn.info("commandstats").items()}
    work = {name: calls for name, calls in stats.items() if name.split("|")[0] not in SETUP_COMMANDS}
    scripted = any(name.startswith("eval") for name in work)
    sent = sum(calls for name, calls in work.items() if not (scripted and name in LUA_INNER))
    return sent, sum(work.values())


def measure(url: str, run: Callable[[str, int], float], jobs: int) -> tuple[float, int, int]:
    conn = redis.Redis.from_url(url)
    conn.flushall()
    conn.script_flush()
    pyq.Client(url).push({"class": "Warm", "args": [], "queue": "warm"})  # loads the script
    conn.config_resetstat()
    seconds = run(url, jobs)
    sent, total = command_counts(conn)
    queued = conn.llen("queue:default")
    conn.close()
    if queued != jobs:
        raise RuntimeError(f"expected {jobs} jobs in queue:default, found {queued}")
    return seconds, sent, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    opts = parser.parse_args()
    results: dict[str, tuple[list[float], float, float]] = {}
    with redis_server() as url:
        for rep in range(opts.reps):
            for name, (run, _) in VARIANTS.items():
                seconds, sent, total = measure(url, run, opts.jobs)
                results.setdefault(name, ([], sent / opts.jobs, total / opts.jobs))[0].append(seconds)
                print(f"rep {rep + 1}: {name:<26} {opts.jobs / seconds:>10,.0f} jobs/s", file=sys.stderr)
    print_table(results, opts.jobs, opts.reps)


def print_table(results: dict[str, tuple[list[float], float, float]], jobs: int, reps: int) -> None:
    rates = {name: jobs / statistics.median(times) for name, (times, _, _) in results.items()}
    print(f"\n{jobs:,} jobs per run, median of {reps}; Python {sys.version.split()[0]}, "
          f"redis-py {redis.__version__}")
    print(f"{'variant':<26} {'jobs/s':>10} {'vs peer':>8} {'peer':<20} {'sent cmds/job':>14} {'all cmds/job':>13}")
    for name, (_, sent, total) in results.items():
        peer = VARIANTS[name][1]
        ratio = rates[name] / rates[peer]
        print(f"{name:<26} {rates[name]:>10,.0f} {ratio:>7.2f}x {peer:<20} {sent:>14.4f} {total:>13.4f}")


if __name__ == "__main__":
    main()
