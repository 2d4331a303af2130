"""Processes the benchmark starts: redis-server instances and worker groups, with /proc accounting.

Everything is started in its own process group and stopped by that group's id,
so no child outlives a run. CPU and RSS come from ``/proc/PID/stat`` and
``/proc/PID/status`` (no psutil).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence

import redis

#: Clock ticks per second for /proc CPU times.
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _pgid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_s() -> float:
    """CPU seconds every core spent not idle since boot (the first line of /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS  # minus idle and iowait


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Group:
    """Processes started from ``argv`` lists, each leader in its own process group."""

    def __init__(self, cmds: Sequence[Sequence[str]], env: dict[str, str], cwd: str, log_path: str) -> None:
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop(), the processes write to it until then
        self.procs = [subprocess.Popen(list(c), env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                       start_new_session=True) for c in cmds]

    def pids(self) -> list[int]:
        """Every live process in our groups (leaders and their forked children)."""
        groups = {p.pid for p in self.procs}
        return [int(d) for d in os.listdir("/proc") if d.isdigit() and _pgid_of(int(d)) in groups]

    def workers(self) -> list[int]:
        """Processes that run jobs: forked children if a leader has any (pyq's pool), else the leaders."""
        leaders = {p.pid for p in self.procs}
        children = [pid for pid in self.pids() if pid not in leaders]
        return children or sorted(leaders)

    def cpu_s(self) -> float:
        return sum(_cpu_s(pid) for pid in self.pids())

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self, grace_s: float = 10.0) -> None:
        self._signal(signal.SIGTERM)
        end = time.monotonic() + grace_s
        while time.monotonic() < end and any(p.poll() is None for p in self.procs):
            time.sleep(0.05)
        self._signal(signal.SIGKILL)
        for p in self.procs:
            p.wait(timeout=5)
        self.log.close()

    def _signal(self, sig: int) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)


class RedisServer:
    """A throwaway redis-server on loopback: no persistence, no password."""

    def __init__(self, log_path: str) -> None:
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--protected-mode", "no"]
        self.group = Group([argv], dict(os.environ), "/tmp", log_path)
        wait_port(self.port)
        self.client = redis.Redis(port=self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu_s(self) -> float:
        return self.group.cpu_s()

    def commandstats(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def stop(self) -> None:
        self.client.close()
        self.group.stop(grace_s=2.0)
