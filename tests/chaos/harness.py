"""One chaos run: a pool, a stream of counted jobs, a SIGKILL every few seconds, a tally.

A kill goes in two steps: SIGSTOP freezes the victim so that its in-flight list
(``pyq:inflight:IDENTITY``) can be read exactly, then SIGKILL. The tokens in
that list are the only ones allowed to run twice. Recovery time is measured
from the SIGKILL to the moment that list is gone (its jobs back on the queue).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

import pyq
from pyq.keys import Keys

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from chaosjobs import RESULTS_KEY  # noqa: E402
from pool import child_pids, write_config  # noqa: E402

#: Jobs per bulk push while enqueueing.
ENQUEUE_CHUNK = 5_000
#: Seconds between samples of a victim's in-flight list.
SAMPLE_S = 0.002


@dataclass
class Plan:
    """What to run: job count, kill period, and the pool's shape."""

    jobs: int = 3_000
    kill_every_s: float = 1.0
    duration_s: float = 120.0  # hard bound on the whole run
    processes: int = 3
    concurrency: int = 4
    sleep_ms: float = 20.0
    seed: int | None = None
    max_kills: int | None = None  # stop killing after this many (None: until the end)


@dataclass
class Kill:
    """One SIGKILL: the victim, the tokens it held in flight, and how long recovery took."""

    pid: int
    identity: str
    inflight_tokens: list[str]
    recovery_s: float | None = None


@dataclass
class Report:
    """The tally of a run."""

    jobs: int
    lost: list[str] = field(default_factory=list)  # never completed and gone from Redis
    unfinished: list[str] = field(default_factory=list)  # never completed, still queued or in a set
    duplicated: dict[str, int] = field(default_factory=dict)
    unexplained_duplicates: list[str] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    wall_s: float = 0.0
    leftover: dict[str, int] = field(default_factory=dict)

    @property
    def recovery_times(self) -> list[float]:
        return sorted(k.recovery_s for k in self.kills if k.recovery_s is not None)

    def summary(self) -> dict[str, Any]:
        times = self.recovery_times
        return {
            "jobs": self.jobs, "lost": len(self.lost), "unfinished": len(self.unfinished),
            "duplicated": len(self.duplicated),
            "unexplained_duplicates": len(self.unexplained_duplicates), "kills": len(self.kills),
            "inflight_at_kills": sum(len(k.inflight_tokens) for k in self.kills),
            "recovery_s": {"n": len(times), "median": _pct(times, 0.5), "p95": _pct(times, 0.95),
                           "max": times[-1] if times else None},
            "wall_s": round(self.wall_s, 2), "leftover": self.leftover,
        }


def _pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 4) if values else None


class ChaosRun:
    """Drives one run against a queue Redis and a separate results Redis."""

    def __init__(self, plan: Plan, queue_url: str, results_url: str, workdir: Path, *, cluster: bool = False) -> None:
        self.plan = plan
        self.queue_url = queue_url
        self.results_url = results_url
        self.workdir = workdir
        self.cluster = cluster  # the queue Redis is a Redis Cluster (``cluster: true``)
        self.r: Any = RedisCluster.from_url(queue_url) if cluster else redis.Redis.from_url(queue_url)
        self.results = redis.Redis.from_url(results_url)
        self.keys = Keys(cluster=cluster)
        self.rng = random.Random(plan.seed)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pool_command = [sys.executable, "-m", "pyq"]

    def run(self) -> Report:
        """Enqueue, start the pool, kill until every token ran, stop; returns the tally."""
        self.results.delete(RESULTS_KEY)
        started = time.monotonic()
        self.enqueue()
        report = Report(self.plan.jobs)
        try:
            self.start_pool()
            self._chaos_loop(report, started + self.plan.duration_s)
        finally:
            self.stop_pool()
        report.wall_s = time.monotonic() - started
        self._tally(report)
        return report

    def enqueue(self) -> None:
        client = pyq.Client(self.queue_url, cluster=self.cluster)
        sleep_ms = self.plan.sleep_ms
        for start in range(0, self.plan.jobs, ENQUEUE_CHUNK):
            end = min(self.plan.jobs, start + ENQUEUE_CHUNK)
            client.push_bulk({"class": "ChaosToken", "args": [[str(i), sleep_ms] for i in range(start, end)]})
        client.redis.close()

    def start_pool(self) -> None:
        cfg = write_config(self.workdir / "chaos.yml", self.queue_url, processes=self.plan.processes,
                           concurrency=self.plan.concurrency, require=["chaosjobs"], log_level="warning",
                           heartbeat_interval=1, timeout=2, cluster=self.cluster)
        path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, "CHAOS_RESULTS_URL": self.results_url}
        log = open(self.workdir / "chaos.log", "wb")  # noqa: SIM115 - closed with the pool
        self.proc = subprocess.Popen([*self.pool_command, "-C", str(cfg)], env=env, cwd=self.workdir,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def stop_pool(self) -> None:
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def _chaos_loop(self, report: Report, deadline: float) -> None:
        next_kill = time.monotonic() + self.plan.kill_every_s
        while time.monotonic() < deadline and not self._finished():
            if time.monotonic() >= next_kill and len(report.kills) < (self.plan.max_kills or sys.maxsize):
                kill = self.kill_one()
                if kill is not None:
                    report.kills.append(kill)
                next_kill = time.monotonic() + self.plan.kill_every_s
            time.sleep(0.05)

    def _finished(self) -> bool:
        return int(self.results.hlen(RESULTS_KEY)) >= self.plan.jobs and not self._inflight_total()

    def _inflight_total(self) -> int:
        owners = [m.decode() for m in self.r.smembers(self.keys.inflight_owners)]
        return sum(int(self.r.llen(self.keys.inflight(o))) for o in owners)

    def kill_one(self) -> Kill | None:
        """Freeze a random worker, read what it holds, SIGKILL it, time its recovery."""
        assert self.proc is not None
        pids = child_pids(self.proc.pid)
        if not pids:
            return None
        pid = self.rng.choice(pids)
        os.kill(pid, signal.SIGSTOP)
        identity = self._identity_of(pid)
        tokens = self._inflight_tokens(identity) if identity else []
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        kill = Kill(pid, identity or "", tokens)
        if identity and tokens:
            kill.recovery_s = self._wait_recovered(identity, killed_at)
        return kill

    def _identity_of(self, pid: int) -> str | None:
        members = self.r.smembers(self.keys.processes) | self.r.smembers(self.keys.inflight_owners)
        found = [m.decode() for m in members if m.decode().split(":")[-2:-1] == [str(pid)]]
        return found[0] if found else None

    def _inflight_tokens(self, identity: str) -> list[str]:
        return [json.loads(raw)["args"][0] for raw in self.r.lrange(self.keys.inflight(identity), 0, -1)]

    def _wait_recovered(self, identity: str, killed_at: float, timeout_s: float = 30.0) -> float | None:
        key = self.keys.inflight(identity)
        while time.monotonic() - killed_at < timeout_s:
            if not self.r.exists(key):
                return time.monotonic() - killed_at
            time.sleep(SAMPLE_S)
        return None

    def _stored_tokens(self) -> set[str]:
        """Tokens of every job still anywhere in Redis: queue, in-flight lists, retry and dead sets."""
        k = self.keys
        raws = self.r.lrange(k.queue("default"), 0, -1) + self.r.zrange(k.retry, 0, -1) + self.r.zrange(k.dead, 0, -1)
        for owner in self.r.smembers(k.inflight_owners):
            raws += self.r.lrange(k.inflight(owner.decode()), 0, -1)
        return {json.loads(raw)["args"][0] for raw in raws}

    def _tally(self, report: Report) -> None:
        counts = {k.decode(): int(v) for k, v in self.results.hgetall(RESULTS_KEY).items()}
        missing = [str(i) for i in range(self.plan.jobs) if str(i) not in counts]
        stored = self._stored_tokens()
        report.lost = [t for t in missing if t not in stored]
        report.unfinished = [t for t in missing if t in stored]
        report.duplicated = {t: n for t, n in counts.items() if n > 1}
        allowed = {t for k in report.kills for t in k.inflight_tokens}
        report.unexplained_duplicates = sorted(t for t in report.duplicated if t not in allowed)
        k = self.keys
        report.leftover = {"queue": int(self.r.llen(k.queue("default"))), "inflight": self._inflight_total(),
                           "retry": int(self.r.zcard(k.retry)), "dead": int(self.r.zcard(k.dead))}
