"""The process registry: what Sidekiq's Web UI "Busy" page and ``Sidekiq::API`` read.

Every beat (default every 5 s) a worker process:

1. measures one ``PING`` round trip (``rtt_us``);
2. in one transaction replaces ``IDENTITY:work`` (and the Sidekiq 6.0-6.4 name
   ``IDENTITY:workers``) with the jobs running now, writes the ``IDENTITY`` hash
   (``info``, ``busy``, ``beat``, ``quiet``, ``rss``, ``rtt_us``, ``concurrency``),
   renews its 60 s expiry, adds the identity to ``processes`` and pops one remote
   signal from ``IDENTITY-signals``;
3. hands a popped signal (``TSTP``, ``TERM``, ``TTIN``) to the worker.

A process that stops beating disappears from the UI 60 s later when its hash
expires; the poller's pruning then drops it from ``processes``, and orphan
recovery (:mod:`pyq.scheduler`) pushes its in-flight jobs back.
"""

from __future__ import annotations

import logging
import os
import resource
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from . import payload
from ._version import __version__
from .connection import text
from .fetch import queue_mode
from .keys import PROCESS_TTL_S, Keys
from .logs import Outage

log = logging.getLogger(__name__)


class WorkerState(Protocol):
    """What the heartbeat needs from the worker it reports on."""

    concurrency: int

    def busy_jobs(self) -> list[tuple[str, str, bytes | str, float]]:
        """(thread id, queue, raw job JSON, run_at epoch seconds) for each running job."""
        ...

    @property
    def quiet(self) -> bool: ...

    def on_signal(self, signal: str) -> None:
        """Act on ``TSTP`` (quiet), ``TERM`` (stop) or ``TTIN`` (dump threads)."""
        ...


def hostname(override: str | None = None) -> str:
    """The host part of an identity: the ``DYNO`` variable when set (Heroku), else ``override`` or the host name."""
    return os.environ.get("DYNO") or override or socket.gethostname()


def make_identity(host: str | None = None) -> str:
    """``host:pid:nonce`` like Sidekiq's."""
    return f"{hostname(host)}:{os.getpid()}:{secrets.token_hex(6)}"


def process_info(identity: str, *, concurrency: int, queues: Sequence[tuple[str, int]], started_at: float,
                 tag: str = "", labels: Sequence[str] = ()) -> dict[str, Any]:
    """The ``info`` JSON object, with the keys every Sidekiq version's UI reads (reference §5)."""
    host, pid = _split_identity(identity)
    weights: dict[str, int] = {}
    for name, weight in queues:
        weights.setdefault(name, int(weight))
    return {
        "hostname": host, "pid": pid, "identity": identity, "tag": tag, "labels": list(labels),
        "started_at": float(started_at), "concurrency": int(concurrency), "queues": list(weights),
        "weights": [weights],
        "capsules": {"default": {"concurrency": int(concurrency), "mode": queue_mode(list(weights.values())),
                                 "weights": weights}},
        "version": __version__, "embedded": False,
    }


def _split_identity(identity: str) -> tuple[str, int]:
    parts = identity.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return identity, os.getpid()


def rss_kb() -> int:
    """Resident memory in KB: ``VmRSS`` from /proc, else the peak from getrusage."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)



class Heartbeat:
    """Publishes one worker process in Sidekiq's registry and relays remote signals to it."""

    def __init__(self, redis: Any, keys: Keys, identity: str, info: dict[str, Any], state: WorkerState,
                 interval_s: float) -> None:
        self.redis = redis
        self.keys = keys
        self.identity = identity
        self.info_json = payload.dumps(info)
        self.state = state
        self.interval_s = interval_s
        self.outage = Outage(log, f"heartbeat of {identity}")

    def beat(self, now_s: float | None = None) -> str | None:
        """One beat; returns the popped signal, already passed to ``state.on_signal``."""
        now_s = time.time() if now_s is None else now_s
        started = time.perf_counter()
        self.redis.ping()
        rtt_us = int((time.perf_counter() - started) * 1_000_000)
        busy = self.state.busy_jobs()
        pipe = self.redis.pipeline(transaction=True)
        self._queue_work(pipe, busy)
        k = self.keys
        pipe.sadd(k.processes, self.identity)
        pipe.hset(k.process(self.identity), mapping=self._fields(now_s, len(busy), rtt_us))
        pipe.expire(k.process(self.identity), PROCESS_TTL_S)
        pipe.rpop(k.process_signals(self.identity))
        popped = pipe.execute()[-1]
        if popped is None:
            return None
        signal = text(popped)
        self.state.on_signal(signal)
        return signal

    def _fields(self, now_s: float, busy: int, rtt_us: int) -> dict[str, Any]:
        return {"info": self.info_json, "busy": busy, "beat": repr(float(now_s)),
                "quiet": "true" if self.state.quiet else "false", "rss": rss_kb(), "rtt_us": rtt_us,
                "concurrency": int(self.state.concurrency)}

    def _queue_work(self, pipe: Any, busy: list[tuple[str, str, bytes | str, float]]) -> None:
        """Delete, then rewrite the running-jobs hash under both of Sidekiq's names (skipped when idle)."""
        names = (self.keys.process_work(self.identity), self.keys.process_workers(self.identity))
        pipe.unlink(*names)
        if not busy:
            return
        work = {tid: payload.dumps({"queue": queue, "payload": text(raw), "run_at": int(run_at)})
                for tid, queue, raw, run_at in busy}
        for name in names:
            pipe.hset(name, mapping=work)
            pipe.expire(name, PROCESS_TTL_S)

    def run(self, stop: threading.Event) -> None:
        """Beat every ``interval_s`` until ``stop`` is set; errors are logged once and retried."""
        while not stop.is_set():
            try:
                self.beat()
            except Exception as exc:  # the heartbeat must outlive any one failure
                self.outage.failed(exc, self.interval_s)
            else:
                self.outage.ok()
            stop.wait(self.interval_s)

    def deregister(self) -> None:
        """Leave the registry: out of ``processes``, running-jobs hashes gone (the hash expires)."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(k.processes, self.identity)
        for name in (k.process_work(self.identity), k.process_workers(self.identity)):
            pipe.unlink(name)  # one key a command: a cluster pipeline refuses a multi-key UNLINK
        pipe.execute()
