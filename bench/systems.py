"""The systems under test: how to start each one's workers and how to tell that they are ready.

All three read the same Sidekiq-format payloads from ``queue:default``, so
one client (pyq's) enqueues for every system and the comparison is about the
workers alone.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from pyq.keys import Keys

BENCH_DIR = Path(__file__).resolve().parent
KEYS = Keys()
#: Threads per process for pyq and Sidekiq (both default to 10).
CONCURRENCY = 10
#: Worker processes for every system.
PROCESSES = 2
#: The one queue most workloads use, and the three weighted ones of the Ruby-pushed W2.
DEFAULT_QUEUES = (("default", 1),)
WEIGHTED_QUEUES = (("critical", 3), ("default", 2), ("low", 1))


@dataclass(frozen=True)
class System:
    """One worker implementation: its command lines and its readiness signal."""

    name: str
    label: str
    registers: bool  # True: ready when PROCESSES entries sit in Sidekiq's `processes` set

    def commands(self, queue_url: str, run_dir: Path, concurrency: int = CONCURRENCY,
                 queues: Sequence[tuple[str, int]] = DEFAULT_QUEUES, processes: int = PROCESSES) -> list[list[str]]:
        if self.name == "pyq":
            config = _pyq_config(queue_url, run_dir, concurrency, queues, processes)
            return [[sys.executable, "-m", "pyq", "-C", str(config), "-r", "jobs"]]
        if self.name == "sidekiq":
            argv = [shutil.which("sidekiq") or "sidekiq", "-r", str(BENCH_DIR / "sidekiq_jobs.rb"),
                    "-c", str(concurrency), "-e", "production"]
            argv += [word for name, weight in queues for word in ("-q", f"{name},{weight}")]
            return [argv] * processes
        return [[sys.executable, str(BENCH_DIR / "bare_loop.py")]] * processes

    def ready(self, queue: redis.Redis, counter: redis.Redis, processes: int = PROCESSES) -> bool:
        if self.registers:
            return queue.scard(KEYS.processes) >= processes
        return int(counter.get("bench:ready") or 0) >= processes


def _pyq_config(queue_url: str, run_dir: Path, concurrency: int, queues: Sequence[tuple[str, int]],
                processes: int) -> Path:
    path = run_dir / "pyq.yml"
    listed = ", ".join(f"[{name}, {weight}]" for name, weight in queues)
    path.write_text(f"redis_url: {queue_url}\nconcurrency: {concurrency}\nprocesses: {processes}\n"
                    f"queues: [{listed}]\nlog_level: warning\n")
    return path


PYQ = System("pyq", "pyq", registers=True)
SIDEKIQ = System("sidekiq", "Sidekiq 6.4.1 (Ruby)", registers=True)
BARE = System("bare", "bare BRPOP loop (Python)", registers=False)
ALL = {s.name: s for s in (PYQ, SIDEKIQ, BARE)}


def env_for(queue_url: str, counter_url: str, concurrency: int = CONCURRENCY) -> dict[str, str]:
    env = dict(os.environ, BENCH_REDIS_URL=queue_url, BENCH_COUNTER_URL=counter_url, BENCH_THREADS=str(concurrency))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH", "")) if p)
    return env
