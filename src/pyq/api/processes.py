"""Live processes (Sidekiq's ``ProcessSet``), what each is running (``WorkSet``), and the remote signals.

Signals go through ``IDENTITY-signals`` (LPUSH, 60 s expiry), the list every
Sidekiq and pyq process pops on each beat, so ``quiet``/``stop`` work on Ruby
processes too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..connection import reply_float, reply_int, text
from ..keys import PROCESS_TTL_S, Keys

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
    identities = sorted(text(i) for i in redis.smembers(keys.processes))
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
        identity, str(info.get("hostname", "")), reply_int(info.get("pid")), reply_int(busy),
        reply_int(concurrency) or reply_int(info.get("concurrency")), reply_float(beat), text(quiet or b"") == "true",
        reply_int(rss), reply_float(info.get("started_at")), [str(q) for q in info.get("queues") or []],
        str(info.get("tag") or ""), str(info.get("version") or ""))


@dataclass(frozen=True)
class Work:
    """One job running in a process, as the process wrote it to ``IDENTITY:work`` (Sidekiq's ``Work``)."""

    thread: str  #: the thread id field of the hash
    queue: str | None
    job: dict[str, Any]  #: the decoded payload
    run_at: float | None  #: epoch seconds the job started


def read_work(redis: Any, keys: Keys, identity: str) -> list[Work]:
    """What process ``identity`` is running now, one entry per busy thread, oldest first.

    Sidekiq 6.5+ (and pyq) write ``IDENTITY:work``; Sidekiq 6.0-6.4 write ``IDENTITY:workers``, read
    when the first is missing, so Ruby processes of either age show their jobs.
    """
    rows = redis.hgetall(keys.process_work(identity)) or redis.hgetall(keys.process_workers(identity))
    found = [work for thread, raw in rows.items() if (work := _work(text(thread), raw)) is not None]
    return sorted(found, key=lambda w: (w.run_at or 0.0, w.thread))


def _work(thread: str, raw: bytes | str) -> Work | None:
    """One ``:work`` entry; its ``payload`` is a JSON string (Sidekiq 6+) or an object (older writers)."""
    try:
        work = json.loads(raw)
        job = work.get("payload") or "{}"
        job = json.loads(job) if isinstance(job, (str, bytes)) else job
    except (ValueError, AttributeError):
        return None
    run_at = work.get("run_at")
    return Work(thread, work.get("queue"), job if isinstance(job, dict) else {},
                float(run_at) if isinstance(run_at, (int, float)) else None)


def serving(processes: list[ProcessInfo]) -> dict[str, list[str]]:
    """Queue -> identities of the live processes fetching from it (a quiet process fetches nothing)."""
    found: dict[str, list[str]] = {}
    for process in processes:
        for queue in [] if process.quiet else process.queues:
            found.setdefault(queue, []).append(process.identity)
    return found


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
