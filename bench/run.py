"""One command for pyq's benchmark: pyq, Ruby Sidekiq and a bare Python BRPOP loop, side by side.

    python bench/run.py                 # 3 repetitions, median table, chart, results JSON
    python bench/run.py --repeat 1 --only pyq
    python bench/run.py --long          # memory over 1,000,000 jobs instead of 200,000

Per repetition and system (2 worker processes each; pyq and Sidekiq with 10
threads per process), on fresh loopback redis-servers (queue + counter):
W1 drains 20,000 no-op jobs (each INCRs a counter on the second server), W2
sends 1,000 jobs 5 ms apart into idle workers; pyq also drains W1 with an
``async def`` body; pyq and Sidekiq drain W1 once more through a loopback
proxy that adds 0 ms and 1 ms to every round trip to the queue server. After
the repetitions, pyq drains a long run while each worker's RSS is sampled.
Output: a markdown table on stdout and in ``OUT/results.md``, every number in
``OUT/results.json``, a chart in ``OUT/bench.png``, worker logs in ``OUT/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from procs import Group, RedisServer, free_port, wait_port
from report import chart, table
from systems import ALL, CONCURRENCY, PYQ, SIDEKIQ, WEIGHTED_QUEUES, System
from workloads import Rig, async_memory, memory, mixed, start_workers, w0, w1, w2, w2_ruby


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="repetitions; the table shows medians")
    p.add_argument("--n", type=int, default=20_000, help="W1 jobs")
    p.add_argument("--w3-n", type=int, default=20_000, help="W3 (I/O-bound) jobs")
    p.add_argument("--w0-n", type=int, default=100_000, help="W0 (no-op) jobs")
    p.add_argument("--lat-n", type=int, default=1_000, help="W2 jobs")
    p.add_argument("--spacing-ms", type=float, default=5.0, help="W2 spacing")
    p.add_argument("--delay-ms", type=float, default=1.0, help="latency the proxy adds per round trip")
    p.add_argument("--mixed-n", type=int, default=1_000, help="short jobs in the mixed-duration run")
    p.add_argument("--mem-n", type=int, default=200_000, help="jobs in the memory run")
    p.add_argument("--long", action="store_true", help="memory run over 1,000,000 jobs")
    p.add_argument("--only", default="pyq,sidekiq,bare", help="systems, comma-separated")
    p.add_argument("--skip", default="",
                   help="workloads to skip: w0,w2ruby,w3,mixed,async,results,batch,proxy,w2,memory")
    p.add_argument("--out", type=Path, default=Path(f"/tmp/pyq-bench-{time.strftime('%Y%m%d-%H%M%S')}"))
    args = p.parse_args(argv)
    args.systems = [ALL[name] for name in args.only.split(",") if name]
    args.skip = set(filter(None, args.skip.split(",")))
    args.mem_n = 1_000_000 if args.long else args.mem_n
    return args


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def one_system(system: System, args: argparse.Namespace, rig: Rig, tag: str) -> dict[str, dict]:
    """W1, W2 and (pyq) async W1 on one set of workers."""
    rig.reset()
    out: dict[str, dict] = {}
    group = start_workers(system, rig, tag)
    try:
        out["w1"] = w1(rig, group, args.n)
        log(f"  {system.name} W1 {out['w1']['rate']:,.0f} jobs/s, {out['w1']['cpu_ms_per_1k']:.0f} ms CPU/1k")
        if "w2" not in args.skip:
            out["w2"] = w2(rig, args.lat_n, args.spacing_ms)
            log(f"  {system.name} W2 p50 {out['w2']['p50_ms']:.2f} ms, p99 {out['w2']['p99_ms']:.2f} ms")
        if system in (PYQ, SIDEKIQ) and "w0" not in args.skip:
            out["w0"] = w0(rig, group, args.w0_n)
            log(f"  {system.name} W0 {out['w0']['cpu_us_per_job']:.0f} µs worker CPU per no-op job")
        if system is PYQ and "async" not in args.skip:
            out["w1_async"] = w1(rig, group, args.n, "BenchAsyncJob")
            log(f"  pyq async W1 {out['w1_async']['rate']:,.0f} jobs/s")
        if system is PYQ and "results" not in args.skip:
            out["w1_result"] = w1(rig, group, args.n, "BenchResultJob")
            log(f"  pyq W1 with stored results {out['w1_result']['rate']:,.0f} jobs/s, "
                f"{out['w1_result']['cpu_ms_per_1k']:.0f} ms CPU/1k")
        if system is PYQ and "batch" not in args.skip:
            out["w1_batch"] = w1(rig, group, args.n, batch=True)
            log(f"  pyq W1 in one batch {out['w1_batch']['rate']:,.0f} jobs/s, "
                f"{out['w1_batch']['cpu_ms_per_1k']:.0f} ms CPU/1k, {out['w1_batch']['redis_cpu_us']:.1f} µs Redis CPU")
    finally:
        group.stop()
    return out


def through_proxy(system: System, args: argparse.Namespace, rig: Rig, delay_ms: float, tag: str) -> dict:
    """W1 with every round trip to the queue server going through the delaying proxy."""
    port = free_port()
    proxy = Group([[sys.executable, str(Path(__file__).with_name("proxy.py")), str(port), str(rig.queue.port),
                    str(delay_ms)]], dict(os.environ), "/tmp", str(rig.run_dir / f"{tag}-proxy.log"))
    try:
        wait_port(port)
        rig.reset()
        proxied = Rig(rig.queue, rig.counter, rig.run_dir, f"redis://127.0.0.1:{port}/0")
        group = start_workers(system, proxied, tag)
        try:
            result = w1(proxied, group, args.n)
        finally:
            group.stop()
    finally:
        proxy.stop(grace_s=1.0)
    log(f"  {system.name} W1 +{delay_ms:g} ms proxy {result['rate']:,.0f} jobs/s")
    return result


#: W3 concurrency per process: pyq runs its async jobs on one loop; Sidekiq gets its best of three thread counts.
W3_CONCURRENCY = {"pyq": (1000,), "sidekiq": (10, 50, 200)}


def io_bound(system: System, args: argparse.Namespace, rig: Rig, tag: str) -> dict[str, dict]:
    """W3 at each concurrency of :data:`W3_CONCURRENCY`: ``w3_c<N>`` results, and the best as ``w3``."""
    out = {}
    for concurrency in W3_CONCURRENCY[system.name]:
        rig.reset()
        group = start_workers(system, rig, f"{tag}-w3-c{concurrency}", concurrency)
        try:
            out[f"w3_c{concurrency}"] = result = w1(rig, group, args.w3_n, "BenchIoJob")
        finally:
            group.stop()
        log(f"  {system.name} W3 ×{concurrency} {result['rate']:,.0f} jobs/s, {result['cpu_ms_per_1k']:.0f} ms CPU/1k")
    out["w3"] = max(out.values(), key=lambda r: r["rate"])
    if system is PYQ:  # the same jobs without their counter call: pyq's own CPU per async job
        rig.reset()
        group = start_workers(system, rig, f"{tag}-w3-sleep", W3_CONCURRENCY["pyq"][0])
        try:
            out["w3_sleep"] = w0(rig, group, args.w3_n, "BenchSleepJob")
        finally:
            group.stop()
        log(f"  pyq W3 sleep-only body {out['w3_sleep']['cpu_us_per_job']:.0f} µs worker CPU per job")
    return out


def ruby_pushed(system: System, args: argparse.Namespace, rig: Rig, tag: str) -> dict:
    """W2 with Ruby's client pushing to three weighted queues (no pyq wake-up marker)."""
    rig.reset()
    group = start_workers(system, rig, f"{tag}-w2ruby", queues=WEIGHTED_QUEUES)
    try:
        result = w2_ruby(rig, args.lat_n, args.spacing_ms, [name for name, _ in WEIGHTED_QUEUES])
    finally:
        group.stop()
    log(f"  {system.name} W2 Ruby-pushed p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
    return result


#: Worker process counts of the mixed-duration run.
MIXED_PROCESSES = (1, 2, 3, 4)


def mixed_durations(system: System, args: argparse.Namespace, rig: Rig, tag: str) -> dict[str, dict]:
    """The mixed-duration run on 1 to 4 processes: ``mixed_p<N>`` results."""
    out = {}
    for processes in MIXED_PROCESSES:
        rig.reset()
        group = start_workers(system, rig, f"{tag}-mixed-p{processes}", processes=processes)
        try:
            out[f"mixed_p{processes}"] = result = mixed(rig, processes * CONCURRENCY, args.mixed_n)
        finally:
            group.stop()
        log(f"  {system.name} mixed ×{processes} processes: short-job wait p50 {result['p50_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.1f} ms")
    return out


def repetition(args: argparse.Namespace, rig: Rig, rep: int) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for system in args.systems:
        results[system.name] = one_system(system, args, rig, f"rep{rep}-{system.name}")
        if system.name in W3_CONCURRENCY and "w2ruby" not in args.skip:
            results[system.name]["w2_ruby"] = ruby_pushed(system, args, rig, f"rep{rep}-{system.name}")
        if system.name in W3_CONCURRENCY and "mixed" not in args.skip:
            results[system.name].update(mixed_durations(system, args, rig, f"rep{rep}-{system.name}"))
        if system.name in W3_CONCURRENCY and "w3" not in args.skip:
            results[system.name].update(io_bound(system, args, rig, f"rep{rep}-{system.name}"))
        if system in (PYQ, SIDEKIQ) and "proxy" not in args.skip:
            for delay in (0.0, args.delay_ms):
                key = f"w1_proxy_{delay:g}ms"
                results[system.name][key] = through_proxy(system, args, rig, delay, f"rep{rep}-{system.name}-{key}")
    return results


#: ``concurrency`` of the drain the RSS is sampled over, and of the run with every async slot holding a job.
MEMORY_CONCURRENCY, ASYNC_MEMORY_CONCURRENCY = 25, 1000


def memory_runs(args: argparse.Namespace, rig: Rig) -> dict:
    """pyq's RSS over a long drain, then with 1,000 async jobs in flight per process."""
    log(f"memory: pyq draining {args.mem_n:,} jobs at concurrency {MEMORY_CONCURRENCY}")
    rig.reset()
    group = start_workers(PYQ, rig, "memory-pyq", MEMORY_CONCURRENCY)
    try:
        mem = memory(rig, group, args.mem_n)
    finally:
        group.stop()
    rig.reset()
    group = start_workers(PYQ, rig, "memory-async-pyq", ASYNC_MEMORY_CONCURRENCY)
    try:
        mem["async"] = held = async_memory(rig, group, ASYNC_MEMORY_CONCURRENCY)
    finally:
        group.stop()
    log(f"  async in flight {held['in_flight']}: {held['kb_per_job']:.1f} KB per job")
    return mem


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    mem: dict | None = None
    with ExitStack() as stack:
        queue = RedisServer(str(args.out / "redis-queue.log"))
        counter = RedisServer(str(args.out / "redis-counter.log"))
        stack.callback(queue.stop)
        stack.callback(counter.stop)
        rig = Rig(queue, counter, args.out, queue.url)
        for rep in range(args.repeat):
            log(f"repetition {rep + 1}/{args.repeat}")
            runs.append(repetition(args, rig, rep))
        if PYQ in args.systems and "memory" not in args.skip:
            mem = memory_runs(args, rig)
    text = table(runs, mem, args)
    print(text)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                       "runs": runs, "memory": mem}, indent=1))
    chart(runs, mem, args.out / "bench.png")
    log(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
