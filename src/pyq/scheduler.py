"""The poller: due scheduled/retry jobs to their queues, and orphaned jobs back to theirs.

Each worker process runs one :class:`Poller` thread (Sidekiq's ``Scheduled::Poller``):

1. waits 10 s plus up to 5 s at random (no 10 s when a fixed average is configured),
   so a fleet started at once does not poll in step;
2. each cycle promotes due members of ``retry``, then ``schedule`` (``lua/promote.lua``,
   atomic, so Ruby and pyq pollers on the same sets take each member once), then
   recovers the in-flight jobs of processes whose heartbeat is gone (``lua/recover.lua``),
   then prunes ``processes`` at most once a minute;
3. sleeps a random interval scaled by the number of processes (:meth:`Poller.next_interval`).

Recovery works on pyq's in-flight lists: a worker's fetch moves each job into
``pyq:inflight:IDENTITY``; a process that died without finishing them leaves them there
until a survivor sees its heartbeat stale and pushes them back to the tail of their queues.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from . import payload, polling, scripts
from .connection import text
from .context import Failure
from .keys import Keys
from .logs import Outage
from .scripts import DeadLimits
from .unique.server import release_for_recovery

log = logging.getLogger(__name__)

#: Seconds the ``process_cleanup`` guard lives: ``processes`` is pruned at most this often.
CLEANUP_GUARD_S = 60
#: Recoveries after which a job counts as the cause of its workers' deaths and goes to the dead set
#: as ``pyq.WorkerCrashed`` (a job that segfaults its worker would otherwise kill a worker forever).
MAX_CRASHES = 3
#: Seconds a job's crash counter lives after its last recovery (1 day): crashes far apart are not a loop.
CRASH_TTL_S = 86_400
#: Hears of each job a recovery buried as ``pyq.WorkerCrashed`` (the metrics count it as failed).
FailureHook = Callable[[Failure], Any]


def recover_process(redis: Any, keys: Keys, identity: str, *, now_s: float | None = None,
                    stale_after_s: float = 0, dead: DeadLimits | None = None,
                    on_failure: FailureHook | None = None) -> int:
    """Push ``identity``'s in-flight jobs back to their queues and drop its registry entries.

    ``stale_after_s == 0`` recovers unconditionally (a supervisor saw that worker die); otherwise
    only when its process hash is gone or its ``beat`` is older than ``stale_after_s``. A job that
    crashed its worker ``MAX_CRASHES`` times is buried, trimmed by ``dead`` (None: Config's defaults).
    Returns the number of jobs pushed back, or -1 when the process is still alive.
    """
    locked = _locked_jobs(redis, keys, [identity])
    pushed = _reported(_recover_call(keys, identity, now_s, stale_after_s, dead).run(redis), on_failure)
    if pushed >= 0:
        _release_locks(redis, keys, locked.get(identity, []))
    return pushed


def _recover_call(keys: Keys, identity: str, now_s: float | None, stale_after_s: float,
                  dead: DeadLimits | None) -> scripts.Call:
    return scripts.recover(keys, identity, now_s=time.time() if now_s is None else now_s,
                           stale_after_s=stale_after_s, max_crashes=MAX_CRASHES, crash_ttl_s=CRASH_TTL_S,
                           dead=dead or DeadLimits.default())


def recover_orphans(redis: Any, keys: Keys, *, now_s: float | None = None, stale_after_s: float,
                    dead: DeadLimits | None = None, on_failure: FailureHook | None = None) -> dict[str, int]:
    """Recover every in-flight owner whose heartbeat is stale: {identity: jobs pushed back}.

    Live owners are left alone and absent from the result; one pipeline for all owners.
    """
    owners = sorted(text(m) for m in redis.smembers(keys.inflight_owners))
    if not owners:
        return {}
    locked = _locked_jobs(redis, keys, owners)
    results = scripts.run_many(redis, [_recover_call(keys, identity, now_s, stale_after_s, dead)
                                       for identity in owners])
    recovered: dict[str, int] = {}
    for identity, result in zip(owners, results, strict=True):
        if isinstance(result, Exception):
            raise result
        pushed = _reported(result, on_failure)
        if pushed >= 0:
            recovered[identity] = pushed
            _release_locks(redis, keys, locked.get(identity, []))
    return recovered


def _reported(reply: list[Any], on_failure: FailureHook | None) -> int:
    """``recover.lua``'s reply: jobs pushed back (-1: alive); each buried job is reported to ``on_failure``."""
    pushed, buried = int(reply[0]), reply[1:]
    for queue, raw in zip(buried[::2], buried[1::2], strict=True):
        job = payload.loads(raw)  # the script buries only payloads it could decode
        log.error("%s jid=%s buried in the dead set as pyq.WorkerCrashed: its workers died %d times while it ran",
                  payload.display_class(job), job.get("jid"), MAX_CRASHES)
        if on_failure is not None:
            on_failure(Failure(text(queue), payload.display_class(job), "worker_crashed", ran=False))
    return pushed


def _locked_jobs(redis: Any, keys: Keys, identities: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Jobs with a uniqueness lock in each in-flight list, read before recovery deletes the list."""
    pipe = redis.pipeline(transaction=False)
    for identity in identities:
        pipe.lrange(keys.inflight(identity), 0, -1)
    found: dict[str, list[dict[str, Any]]] = {}
    for identity, raws in zip(identities, pipe.execute(), strict=True):
        jobs = [job for raw in raws if b'"lock"' in raw and (job := payload.try_loads(raw)) and job.get("lock")]
        if jobs:
            found[identity] = jobs
    return found


def _release_locks(redis: Any, keys: Keys, jobs: list[dict[str, Any]]) -> None:
    """Free the runtime locks a dead worker held (sidekiq-unique-jobs layout), so others may run."""
    if not jobs:
        return
    for job in jobs:
        try:
            release_for_recovery(redis, keys, job)
        except Exception:
            log.exception("cannot release the uniqueness lock of recovered job jid=%s", job.get("jid"))



def prune_processes(redis: Any, keys: Keys) -> int:
    """Drop ``processes`` members whose hash has no ``info``, at most once a minute cluster-wide."""
    if not redis.set(keys.process_cleanup, 1, nx=True, ex=CLEANUP_GUARD_S):
        return 0
    members = list(redis.smembers(keys.processes))
    if not members:
        return 0
    pipe = redis.pipeline(transaction=False)
    for member in members:
        pipe.hexists(keys.process(text(member)), "info")
    gone = [m for m, alive in zip(members, pipe.execute(), strict=True) if not alive]
    return int(redis.srem(keys.processes, *gone)) if gone else 0


class Poller:
    """Promotes due jobs and recovers orphans on a randomised schedule shared by the fleet."""

    def __init__(self, redis: Any, keys: Keys, *, time_style: payload.TimeStyle,
                 average_scheduled_poll_interval_s: float, poll_interval_average_s: float | None,
                 recovery_timeout_s: float, dead: DeadLimits, rng: random.Random | None = None,
                 batch: int = 100, on_failure: FailureHook | None = None) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if time_style not in ("float", "ms"):
            raise ValueError(f"time_style must be 'float' or 'ms', got {time_style!r}")
        self.redis = redis
        self.keys = keys
        self.time_style = time_style
        self.average_scheduled_poll_interval_s = average_scheduled_poll_interval_s
        self.poll_interval_average_s = poll_interval_average_s
        self.recovery_timeout_s = recovery_timeout_s
        self.dead = dead
        self.on_failure = on_failure
        self.rng = rng or random.Random()
        self.batch = batch
        self._stop = threading.Event()
        self.outage = Outage(log, "poller")

    def promote_due(self, now_s: float | None = None) -> int:
        """Move due jobs of ``retry``, then ``schedule``, to their queues; returns how many moved."""
        now_s = time.time() if now_s is None else now_s
        stamp = payload.timestamp(now_s, self.time_style)
        moved = 0
        for zset in ("retry", "schedule"):
            call = scripts.promote(self.keys, zset, now_s=now_s, limit=self.batch, enqueued_at=stamp)
            while not self._stop.is_set():
                n = int(call.run(self.redis))
                moved += n
                if n < self.batch:
                    break
        return moved

    def next_interval(self, process_count: int) -> float:
        """Seconds until the next cycle: each of N processes waits on average N × ``average_scheduled_poll_interval_s``,
        so together they poll about once per average (a fixed ``poll_interval_average_s`` replaces that)."""
        count = max(process_count, 1)
        average_s = self.poll_interval_average_s if self.poll_interval_average_s is not None \
            else count * self.average_scheduled_poll_interval_s
        return polling.random_interval_s(average_s, count, self.rng)

    def initial_wait(self) -> float:
        """Seconds before the first cycle (Sidekiq: 10 s unless a fixed average is set, plus up to 5 s)."""
        return polling.initial_wait_s(self.rng, 0.0 if self.poll_interval_average_s is not None
                                      else polling.INITIAL_WAIT_S)

    def cycle(self, now_s: float | None = None) -> None:
        """One round: promote, recover orphans, prune the registry."""
        self.promote_due(now_s)
        recovered = recover_orphans(self.redis, self.keys, now_s=now_s, stale_after_s=self.recovery_timeout_s,
                                    dead=self.dead, on_failure=self.on_failure)
        for identity, n in recovered.items():
            if n:
                log.warning("recovered %d in-flight job(s) of dead process %s", n, identity)
            else:
                log.debug("dropped the in-flight entry of dead process %s: it had no jobs in flight", identity)
        prune_processes(self.redis, self.keys)

    def run(self, stop: threading.Event) -> None:
        """Initial wait, then cycles until ``stop`` is set; Redis errors are logged once and retried."""
        self._stop = stop
        if stop.wait(self.initial_wait()):
            return
        while not stop.is_set():
            count = 1
            try:
                self.cycle()
                count = int(self.redis.scard(self.keys.processes))
            except Exception as exc:  # the poller must outlive any one failure
                self.outage.failed(exc, self.average_scheduled_poll_interval_s)
            else:
                self.outage.ok()
            stop.wait(self.next_interval(count))
