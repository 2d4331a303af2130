"""Admin reads: live processes and their remote signals, and the headline numbers (Sidekiq's Stats).

Signals go through ``IDENTITY-signals`` (LPUSH, 60 s expiry), the list every Sidekiq and pyq process
pops on each beat, so ``quiet``/``stop`` work on Ruby processes too. Numbers are read in two pipelined
round trips; busy slots and the process count come from live process hashes only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import payload
from .keys import PROCESS_TTL_S, Keys

#: Remote signals a process understands: quiet, graceful stop, dump thread stacks.
SIGNALS = {"quiet": "TSTP", "stop": "TERM", "dump": "TTIN"}
_FIELDS = ("info", "busy", "beat", "quiet", "rss", "concurrency")


@dataclass(frozen=True)
class ProcessInfo:
    """One live process as its heartbeat describes it."""

    identity: str
    hostname: str
    pid: int
    busy: int
    concurrency: int
    beat: float
    quiet: bool
    rss_kb: int
    started_at: float
    queues: list[str] = field(default_factory=list)
    tag: str = ""
    version: str = ""


def read_processes(redis: Any, keys: Keys) -> list[ProcessInfo]:
    """Every registered process whose hash still holds ``info``, sorted by identity."""
    identities = sorted(_text(i) for i in redis.smembers(keys.processes))
    pipe = redis.pipeline(transaction=False)
    for identity in identities:
        pipe.hmget(keys.process(identity), *_FIELDS)
    rows = pipe.execute() if identities else []
    found = (_parse(identity, row) for identity, row in zip(identities, rows, strict=True))
    return [p for p in found if p is not None]


def _parse(identity: str, row: list[Any]) -> ProcessInfo | None:
    raw_info, busy, beat, quiet, rss, concurrency = row
    if not raw_info:
        return None
    try:
        info = json.loads(raw_info)
    except ValueError:
        info = {}
    info = info if isinstance(info, dict) else {}
    return ProcessInfo(
        identity, str(info.get("hostname", "")), _int(info.get("pid")), _int(busy),
        _int(concurrency) or _int(info.get("concurrency")), _float(beat), _text(quiet or b"") == "true",
        _int(rss), _float(info.get("started_at")), [str(q) for q in info.get("queues") or []],
        str(info.get("tag") or ""), str(info.get("version") or ""))


def signal_process(redis: Any, keys: Keys, identity: str, action: str) -> str:
    """Ask one process to ``quiet``, ``stop`` or ``dump``; returns the signal sent.

    Raises LookupError for an identity that is not registered, ValueError for an unknown action.
    """
    if action not in SIGNALS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(SIGNALS)}")
    if not redis.sismember(keys.processes, identity):
        raise LookupError(f"no process {identity!r} is registered")
    signal = SIGNALS[action]
    pipe = redis.pipeline(transaction=True)
    pipe.lpush(keys.process_signals(identity), signal)
    pipe.expire(keys.process_signals(identity), PROCESS_TTL_S)
    pipe.execute()
    return signal


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class QueueStat:
    name: str
    size: int
    latency_s: float


@dataclass(frozen=True)
class Overview:
    """A snapshot of the whole system."""

    processed: int
    failed: int
    scheduled: int
    retries: int
    dead: int
    queues: list[QueueStat] = field(default_factory=list)
    processes: list[ProcessInfo] = field(default_factory=list)

    @property
    def enqueued(self) -> int:
        return sum(q.size for q in self.queues)

    @property
    def busy(self) -> int:
        return sum(p.busy for p in self.processes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` and the dashboard's API."""
        data = asdict(self)
        data.update(enqueued=self.enqueued, busy=self.busy, process_count=len(self.processes))
        return data


def overview(redis: Any, keys: Keys, now_s: float | None = None) -> Overview:
    """Read every headline number; ``now_s`` fixes the clock for latencies."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.stat("processed"))
    pipe.get(keys.stat("failed"))
    for name in ("schedule", "retry", "dead"):
        pipe.zcard(getattr(keys, name))
    pipe.smembers(keys.queues)
    processed, failed, scheduled, retries, dead, names = pipe.execute()
    queues = queue_stats(redis, keys, sorted(_text(n) for n in names), now_s)
    return Overview(int(processed or 0), int(failed or 0), scheduled, retries, dead, queues,
                    read_processes(redis, keys))


def queue_stats(redis: Any, keys: Keys, names: list[str], now_s: float | None = None) -> list[QueueStat]:
    """Size and latency of each named queue, in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(keys.queue(name))
        pipe.lindex(keys.queue(name), -1)
    replies = pipe.execute() if names else []
    now_s = time.time() if now_s is None else now_s
    return [QueueStat(name, int(replies[2 * i]), latency_s(replies[2 * i + 1], now_s))
            for i, name in enumerate(names)]


def latency_s(oldest: bytes | str | None, now_s: float) -> float:
    """Seconds the oldest job has waited, from ``enqueued_at`` (else ``created_at``); 0 if unknown."""
    if not oldest:
        return 0.0
    try:
        job = payload.loads(oldest)
    except payload.InvalidPayload:
        return 0.0
    stamp = payload.to_epoch_s(job.get("enqueued_at")) or payload.to_epoch_s(job.get("created_at"))
    return round(max(0.0, now_s - stamp), 3) if stamp else 0.0

