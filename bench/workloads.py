"""The measured workloads: W0 (no-op drain), W1 (drain a full queue), W2 (latency into idle workers), mixed
durations (short jobs behind long ones), memory.

W1 stages all jobs under another namespace first, then moves them into
``queue:default`` in one MULTI (RENAME + wake-up marker) while the workers
sit idle and registered, so the clock measures draining only: no process
start-up, no enqueue running alongside.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import Group, RedisServer, machine_busy_s, rss_kb, self_cpu_s
from systems import BENCH_DIR, CONCURRENCY, DEFAULT_QUEUES, KEYS, PROCESSES, System, env_for

import pyq
from pyq import scripts
from pyq.keys import Keys

COUNTER_KEY, LAT_KEY = "bench:done", "bench:lat"
LONG_STARTED_KEY, RELEASE_KEY, MIXED_KEY = "bench:long", "bench:release", "bench:mixed"
#: Namespace the W1 jobs are enqueued under before they are released all at once.
STAGE = Keys("bench-stage")
#: Seconds to wait for workers to register before giving up.
READY_TIMEOUT_S = 60.0


@dataclass
class Rig:
    """The two Redis servers of one run and where logs go; ``queue_url`` may point at a proxy."""

    queue: RedisServer
    counter: RedisServer
    run_dir: Path
    queue_url: str

    def reset(self) -> None:
        self.queue.client.flushall()
        self.counter.client.flushall()


def start_workers(system: System, rig: Rig, tag: str, concurrency: int = CONCURRENCY,
                  queues: Sequence[tuple[str, int]] = DEFAULT_QUEUES, processes: int = PROCESSES) -> Group:
    """Start the system's workers and return once all of them are registered and idle."""
    group = Group(system.commands(rig.queue_url, rig.run_dir, concurrency, queues, processes),
                  env_for(rig.queue_url, rig.counter.url, concurrency), str(BENCH_DIR), str(rig.run_dir / f"{tag}.log"))
    end = time.monotonic() + READY_TIMEOUT_S
    while not system.ready(rig.queue.client, rig.counter.client, processes):
        if time.monotonic() > end or not group.alive():
            group.stop()
            raise RuntimeError(f"{system.name} workers not ready; see {rig.run_dir / tag}.log")
        time.sleep(0.05)
    time.sleep(0.5)  # let every thread reach its blocking wait
    return group


def stage(rig: Rig, n: int, job_class: str, bid: str | None = None) -> None:
    """Push ``n`` jobs under the stage namespace; with ``bid``, as members of that batch (of the real namespace)."""
    client = pyq.Client(rig.queue.url, namespace=STAGE.namespace)
    for start in range(0, n, 10_000):
        jids = client.push_bulk({"class": job_class, "args": [[i] for i in range(start, min(n, start + 10_000))],
                                 **({"bid": bid} if bid else {})})
        if bid:
            scripts.batch_add(KEYS, bid, jids=jids).run(rig.queue.client)
    rig.queue.client.delete(STAGE.wake("default"), STAGE.queues)


def release(rig: Rig) -> float:
    """Move the staged jobs into ``queue:default`` atomically; returns the monotonic time just before."""
    pipe = rig.queue.client.pipeline(transaction=True)
    pipe.rename(STAGE.queue("default"), KEYS.queue("default")).sadd(KEYS.queues, "default")
    pipe.lpush(KEYS.wake("default"), "1")
    t0 = time.monotonic()
    pipe.execute()
    return t0


def wait_count(rig: Rig, n: int, timeout_s: float, on_tick: Callable[[], None] | None = None) -> float:
    """Poll the counter every millisecond until it reaches ``n``; returns the monotonic time it did."""
    end = time.monotonic() + timeout_s
    client = rig.counter.client
    while int(client.get(COUNTER_KEY) or 0) < n:
        if time.monotonic() > end:
            raise TimeoutError(f"only {client.get(COUNTER_KEY)} of {n} jobs done after {timeout_s}s")
        if on_tick:
            on_tick()
        time.sleep(0.001)
    return time.monotonic()


def w1(rig: Rig, group: Group, n: int, job_class: str = "BenchJob", timeout_s: float = 300.0,
       batch: bool = False) -> dict[str, float]:
    """Drain ``n`` jobs: jobs/s, worker CPU per 1k jobs, queue-Redis commands and CPU per job.

    ``batch``: the jobs are the members of one batch (with an on_success callback nobody serves), so each
    ack also settles its member.
    """
    rig.counter.client.delete(COUNTER_KEY)
    bid = None
    if batch:
        bid, now_s = f"bench{time.time_ns()}", time.time()
        callback = ("success", "bench-callbacks", "0" * 24,
                    '{"class":"BenchCallback","args":[],"queue":"bench-callbacks"}')
        scripts.batch_open(KEYS, bid, now_s=now_s, expires_at_s=now_s + 3600, guard=False, time_style="float",
                           callbacks=[callback]).run(rig.queue.client)
    stage(rig, n, job_class, bid)
    before = _cpu_snapshot(rig, group)
    stats0 = rig.queue.commandstats()
    t0 = release(rig)
    t1 = wait_count(rig, n, timeout_s)
    stats1 = rig.queue.commandstats()
    worker, queue_redis, ours, busy = (b - a for a, b in zip(before, _cpu_snapshot(rig, group), strict=True))
    calls = {k: v - stats0.get(k, 0) for k, v in stats1.items() if k not in ("info", "get")}
    return {"rate": n / (t1 - t0), "cpu_ms_per_1k": worker * 1e6 / n, "redis_cpu_us": queue_redis * 1e6 / n,
            "cmds_per_job": sum(calls.values()) / n, "evalsha_per_job": calls.get("evalsha", 0) / n,
            "other_load": max(0.0, busy - ours) / (t1 - t0)}


def w0(rig: Rig, group: Group, n: int, job_class: str = "NoopJob", timeout_s: float = 600.0) -> dict[str, float]:
    """Drain ``n`` jobs whose body calls nothing; done when the queue is empty and no job runs. Worker CPU
    per job only: Sidekiq flushes ``stat:processed`` every few seconds, so a rate from it would measure that."""
    stage(rig, n, job_class)
    before = group.cpu_s()
    release(rig)
    end = time.monotonic() + timeout_s
    queue = rig.queue.client
    while queue.llen(KEYS.queue("default")) or _busy(queue):
        if time.monotonic() > end:
            raise TimeoutError(f"W0: {queue.llen(KEYS.queue('default'))} of {n} jobs left after {timeout_s}s")
        time.sleep(0.005)
    return {"cpu_us_per_job": (group.cpu_s() - before) * 1e6 / n}


def _busy(queue: Any) -> int:
    """Jobs running now across the registered processes (Sidekiq's ``busy`` field)."""
    return sum(int(queue.hget(p, "busy") or 0) for p in queue.smembers(KEYS.processes))


def _cpu_snapshot(rig: Rig, group: Group) -> tuple[float, float, float, float]:
    """(workers, queue Redis, everything this benchmark runs, the whole machine) CPU seconds."""
    worker, queue_redis = group.cpu_s(), rig.queue.cpu_s()
    ours = worker + queue_redis + rig.counter.cpu_s() + self_cpu_s()
    return worker, queue_redis, ours, machine_busy_s()


def w2(rig: Rig, n: int, spacing_ms: float, timeout_s: float = 60.0) -> dict[str, float]:
    """``n`` jobs, one every ``spacing_ms``, into idle workers; latency = enqueue call start -> job start."""
    rig.counter.client.delete(COUNTER_KEY, LAT_KEY)
    client = pyq.Client(rig.queue.url)
    client.redis.ping()
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i * spacing_ms / 1000 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.push({"class": "BenchJob", "args": [time.time_ns() // 1000]})
    wait_count(rig, n, timeout_s)
    lat = sorted(int(x) / 1000 for x in rig.counter.client.lrange(LAT_KEY, 0, -1))
    return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "max_ms": lat[-1]}


def w2_ruby(rig: Rig, n: int, spacing_ms: float, queues: Sequence[str], timeout_s: float = 120.0) -> dict[str, float]:
    """W2 with the jobs pushed by Ruby's client over ``queues`` in turn: no pyq wake-up marker."""
    rig.counter.client.delete(COUNTER_KEY, LAT_KEY)
    env = env_for(rig.queue.url, rig.counter.url)
    subprocess.run(["ruby", str(BENCH_DIR / "ruby" / "w2_push.rb"), str(n), str(spacing_ms), ",".join(queues)],
                   env=env, check=True, timeout=timeout_s)
    wait_count(rig, n, timeout_s)
    lat = sorted(int(x) / 1000 for x in rig.counter.client.lrange(LAT_KEY, 0, -1))
    return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "max_ms": lat[-1]}


def mixed(rig: Rig, slots: int, short_n: int, timeout_s: float = 120.0) -> dict[str, float]:
    """One long job in every slot but one, then ``short_n`` short jobs at once: how long each short job
    waited after the free slot became free (the push, or the end of the short job before it)."""
    counter = rig.counter.client
    counter.delete(LONG_STARTED_KEY, RELEASE_KEY, MIXED_KEY)
    client = pyq.Client(rig.queue.url)
    client.push_bulk({"class": "MixedLongJob", "args": [[i] for i in range(slots - 1)]})
    _wait_for(lambda: int(counter.get(LONG_STARTED_KEY) or 0) >= slots - 1, timeout_s, "long jobs to start")
    time.sleep(0.5)  # let the free slot's fetcher settle into its idle wait
    pushed_us = time.time_ns() // 1000
    client.push_bulk({"class": "MixedShortJob", "args": [[i] for i in range(short_n)]})
    _wait_for(lambda: counter.llen(MIXED_KEY) >= short_n, timeout_s, "short jobs to run")
    counter.rpush(RELEASE_KEY, *["1"] * (slots - 1))
    runs = sorted(tuple(int(v) for v in raw.split(b",")) for raw in counter.lrange(MIXED_KEY, 0, -1))
    waits_ms, free_at_us = [], pushed_us
    for start_us, end_us in runs:
        waits_ms.append(max(0, start_us - free_at_us) / 1000)
        free_at_us = max(free_at_us, end_us)
    waits_ms.sort()
    return {"p50_ms": percentile(waits_ms, 50), "p99_ms": percentile(waits_ms, 99), "max_ms": waits_ms[-1],
            "span_ms": (runs[-1][1] - pushed_us) / 1000}


def _wait_for(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.005)


def memory(rig: Rig, group: Group, n: int, timeout_s: float = 1200.0) -> dict[str, object]:
    """Drain ``n`` jobs while sampling each worker's RSS; start = after the first 10% of jobs."""
    rig.counter.client.delete(COUNTER_KEY)
    stage(rig, n, "BenchJob")
    samples: list[tuple[int, list[int]]] = []
    last = [0.0]

    def sample() -> None:
        if time.monotonic() - last[0] >= 0.25:
            last[0] = time.monotonic()
            samples.append((int(rig.counter.client.get(COUNTER_KEY) or 0), [rss_kb(p) for p in group.workers()]))

    t0 = release(rig)
    t1 = wait_count(rig, n, timeout_s, sample)
    sample()
    warm = next(s for done, s in samples if done >= n // 10)
    end = samples[-1][1]
    peak = [max(s[i] for _, s in samples if len(s) > i) for i in range(len(end))]
    drift = max(abs(e - w) / w for w, e in zip(warm, end, strict=False))
    return {"rate": n / (t1 - t0), "rss_warm_mb": [w / 1024 for w in warm], "rss_end_mb": [e / 1024 for e in end],
            "rss_peak_mb": [p / 1024 for p in peak], "drift": drift,
            "curve": [(done, [kb / 1024 for kb in s]) for done, s in samples]}


def async_memory(rig: Rig, group: Group, per_process: int, hold_ms: int = 30_000,
                 timeout_s: float = 60.0) -> dict[str, object]:
    """RSS of each idle worker, then with ``per_process`` async jobs in flight in each: KB per in-flight job.

    The workers run 20 short jobs first, so imports and the first task are in the baseline; then
    ``per_process`` jobs per process that each await ``hold_ms``, and RSS is read once all of them are
    in flight (the queue is empty and every slot busy) and has stopped growing."""
    queue = rig.queue.client
    client = pyq.Client(rig.queue.url)
    client.push_bulk({"class": "HoldAsyncJob", "args": [[1] for _ in range(20)]})
    _wait_for(lambda: not queue.llen(KEYS.queue("default")) and not _inflight(queue), timeout_s, "warm-up jobs")
    time.sleep(1.0)
    idle = [rss_kb(p) for p in group.workers()]
    n = per_process * len(idle)
    client.push_bulk({"class": "HoldAsyncJob", "args": [[hold_ms] for _ in range(n)]})
    _wait_for(lambda: not queue.llen(KEYS.queue("default")) and _inflight(queue) >= n, timeout_s, "jobs in flight")
    loaded: list[int] = []
    for _ in range(10):  # until RSS stops growing
        previous, loaded = loaded, [rss_kb(p) for p in group.workers()]
        if loaded == previous:
            break
        time.sleep(0.5)
    held_by_pid = {int(identity.split(b":")[1]): queue.llen(KEYS.inflight(identity.decode()))
                   for identity in queue.smembers(KEYS.processes)}
    held = [held_by_pid.get(pid, 0) for pid in group.workers()]
    per_job_kb = [(b - a) / max(1, h) for a, b, h in zip(idle, loaded, held, strict=True)]
    return {"rss_idle_mb": [kb / 1024 for kb in idle], "rss_loaded_mb": [kb / 1024 for kb in loaded],
            "kb_per_job": max(per_job_kb), "in_flight": held}


def _inflight(queue: Any) -> int:
    return sum(queue.llen(KEYS.inflight(identity.decode())) for identity in queue.smembers(KEYS.processes))


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
