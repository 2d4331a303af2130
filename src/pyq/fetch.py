"""Taking jobs out of queues without ever losing one: queue order, fetch, ack, put-back.

The in-flight contract:

1. ``retrieve_work`` runs ``lua/fetch.lua``: up to N jobs move from the first
   non-empty queues (in the order :class:`QueueOrder` gives) into this
   process's list ``pyq:inflight:IDENTITY``, atomically. A job is never only
   in Python memory.
2. A job leaves the in-flight list only through ``lua/ack.lua`` (it
   finished), ``lua/fail.lua`` (retry or dead set), ``lua/requeue.lua`` (put
   back at shutdown) or ``lua/recover.lua`` (its process died).
3. Acks are batched by :class:`Acker`: a job that succeeds costs no round
   trip of its own; stats are counted in the same script call.

Idle processes that work one queue block in BLMOVE from that queue into their
in-flight list (still one atomic move), so any pushed job, Ruby's included,
starts after one round trip. Idle processes with several queues block on
wake-up markers (``pyq:wake:QUEUE``) that pyq's enqueue, promotion and
put-back scripts push, and on Redis's client tracking for pushes by any other
client (:mod:`pyq.pushwatch`), so a pushed job starts within a round trip or two.

The fetch and ack calls run on a connection their thread keeps
(:class:`~pyq.connection.PinnedConnection`): they are most of a worker's calls.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.exceptions import RedisError

from . import payload, scripts
from .connection import PinnedConnection
from .keys import Keys
from .logs import Outage
from .pushwatch import PushWatch
from .scripts import BatchOutcome, Call

log = logging.getLogger("pyq.fetch")

#: Most payloads per ack script call.
ACK_BATCH = 500
#: Seconds the acker waits after the first finished job so that more can join the batch.
ACK_LINGER_S = 0.002
#: Seconds a stopping acker keeps retrying an unreachable Redis before it leaves its jobs in flight.
ACK_GIVE_UP_S = 5.0


def queue_mode(weights: Sequence[int]) -> str:
    """Sidekiq's capsule rule: all weights 0 -> strict, all 1 -> random, anything else -> weighted.

    Random and weighted fetch alike (a shuffle of the weight-expanded names, duplicates dropped), so
    ``[0, 1]`` is weighted by name and random in effect, as in Sidekiq.
    """
    if all(w == 0 for w in weights):
        return "strict"
    if all(w == 1 for w in weights):
        return "random"
    return "weighted"


class QueueOrder:
    """Sidekiq's queue order per fetch: strict (no weights), random (all 1) or weighted."""

    def __init__(self, queues: Sequence[tuple[str, int]], rng: random.Random | None = None) -> None:
        names = list(dict.fromkeys(name for name, _ in queues))
        weights = {name: weight for name, weight in queues}
        self._rng = rng or random.Random()
        self.names = names
        self.mode = queue_mode([weights[n] for n in names])
        self._expanded = [n for n in names for _ in range(max(weights[n], 1))]

    def __call__(self) -> list[str]:
        if self.mode == "strict":
            return self.names
        if self.mode == "random":
            return self._rng.sample(self.names, len(self.names))
        shuffled = self._rng.sample(self._expanded, len(self._expanded))
        return list(dict.fromkeys(shuffled))


@dataclass(slots=True, eq=False)
class UnitOfWork:
    """One fetched job: the queue it came from and its bytes as stored (``raw``); hashed by identity."""

    queue: str
    raw: bytes


class Fetcher:
    """Moves jobs from the queues into this process's in-flight list."""

    def __init__(self, redis: Any, keys: Keys, identity: str, order: QueueOrder) -> None:
        self.redis = redis
        self.scripts_conn = PinnedConnection(redis)  # the fetcher thread's own connection for fetch.lua
        self.keys = keys
        self.identity = identity
        self.order = order
        self._wake_keys = [keys.wake(name) for name in order.names]
        self.watch = PushWatch(redis, [key for name in order.names for key in (keys.queue(name), keys.prio(name))])

    def retrieve_work(self, count: int) -> list[UnitOfWork]:
        """Up to ``count`` jobs, oldest first, now recorded as in flight."""
        names = self.order()
        flat = scripts.fetch(self.keys, self.identity, names, count=count).run(self.scripts_conn)
        if self.watch.armed and len(flat) >= 2 * count:  # a backlog: no message per write while it lasts
            self.watch.disarm()
        return [UnitOfWork(names[flat[i] - 1], flat[i + 1]) for i in range(0, len(flat), 2)]

    def wait_for_work(self, timeout_s: float) -> bool:
        """Block until a wake-up marker arrives or ``timeout_s`` passes; True if woken."""
        return self.redis.blpop(self._wake_keys, timeout=timeout_s) is not None

    def take_when_pushed(self, timeout_s: float) -> list[UnitOfWork]:
        """The idle wait: block until work arrives or ``timeout_s`` passes.

        With one queue, a blocking LMOVE (BLMOVE) takes the first job pushed, by any client,
        straight from the queue's tail into the in-flight list (the owners entry is written in the
        same round trip, before it), so that job starts without a second round trip. With several
        queues, Redis cannot block on them in order: wait until a client writes to one of them
        (:class:`~pyq.pushwatch.PushWatch`; wake-up markers where Redis cannot track) and return
        nothing, and the caller fetches. Just after tracking is switched on nothing is awaited: the
        caller fetches once more, so a push made before it was on is not missed.
        """
        if len(self.order.names) != 1:
            if self.watch.armed:
                self.watch.wait(timeout_s)
            elif not self.watch.arm():
                self.wait_for_work(timeout_s)
            return []
        name = self.order.names[0]
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.inflight_owners, self.identity)
        pipe.blmove(self.keys.queue(name), self.keys.inflight(self.identity), timeout_s, "RIGHT", "LEFT")
        raw = pipe.execute()[1]
        return [] if raw is None else [UnitOfWork(name, raw)]

    def requeue(self, units: Sequence[UnitOfWork]) -> int:
        """Put unfinished jobs back at the front of their queues (only those still in flight)."""
        if not units:
            return 0
        pairs = [(u.queue, u.raw) for u in units]
        return int(scripts.requeue(self.keys, self.identity, pairs=pairs).run(self.redis))

    def put_back(self, units: Sequence[UnitOfWork]) -> None:
        """``requeue`` for a stopping worker: a Redis error is logged, the jobs stay in flight to be recovered."""
        if not units:
            return
        try:
            log.info("put %d job(s) back at the front of their queues", self.requeue(units))
        except RedisError as exc:
            log.error("cannot put %d job(s) back (%s); they stay in flight and will be recovered", len(units), exc)

    def release_ownership(self) -> bool:
        """Leave ``pyq:inflight-owners`` if our in-flight list is empty; True if we left.

        Called once nothing can fetch any more (the fetcher has stopped), so that a clean stop
        leaves no entry for survivors to recover. A non-empty list (an ack or put-back that Redis
        refused) keeps the entry: those jobs are then recovered as a dead process's.
        """
        inflight, owners = self.keys.inflight(self.identity), self.keys.inflight_owners

        def leave(pipe: Any) -> bool:
            if pipe.llen(inflight):
                return False
            pipe.multi()
            pipe.srem(owners, self.identity)
            return True

        return bool(self.redis.transaction(leave, inflight, value_from_callable=True))

    def reclaim_lost(self, known_raws: set[bytes]) -> int:
        """Put back jobs our in-flight list holds but this process never received.

        When the connection drops after Redis ran a fetch but before its reply arrived, the jobs
        sit in our in-flight list while we know nothing of them; the heartbeat keeps us alive, so
        no survivor recovers them either. After an outage, everything in the list that is neither
        running here nor waiting for its ack (``known_raws``) goes back to the front of its queue.
        """
        stored = self.redis.lrange(self.keys.inflight(self.identity), 0, -1)
        lost = [UnitOfWork(payload.queue_of(payload.try_loads(raw)), raw) for raw in stored if raw not in known_raws]
        if not lost:
            return 0
        pushed = self.requeue(lost)
        log.warning("put back %d job(s) fetched while the connection dropped (their reply never arrived)", pushed)
        return pushed


class Ack(NamedTuple):
    """One finished job waiting for its ack: its raw payload, its result to store, its batch membership."""

    raw: bytes
    result: tuple[str, int, bytes] | None
    batch_member: tuple[str, str, BatchOutcome] | None


class Acker:
    """Batches acknowledgements of finished jobs into one ``ack.lua`` call.

    ``acknowledge`` is called from executor threads and never touches Redis;
    the acker thread flushes a batch shortly after the first job joins it.
    A failed flush keeps the batch and tries again, so a Redis outage delays
    acks (the jobs stay in flight) but loses none. Results of jobs that keep
    one (``result_ttl``) go in the same pipeline, before the ack; a job of a
    pyq batch is settled there by the ack script itself.
    """

    def __init__(self, redis: Any, keys: Keys, identity: str) -> None:
        self.redis = redis
        self.scripts_conn = PinnedConnection(redis)  # the acker thread's own connection for ack.lua
        self.keys = keys
        self.identity = identity
        self._pending: list[Ack] = []
        self._sending: list[Ack] = []  # the acks whose script is on its way
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def acknowledge(self, raw: bytes, result: tuple[str, int, bytes] | None = None,
                    batch_member: tuple[str, str, BatchOutcome] | None = None) -> None:
        """Queue the ack of ``raw``; with the (jid, ttl_s, blob) result of a job that keeps one, and the
        (bid, jid, outcome) of a job that belongs to a batch."""
        with self._lock:
            self._pending.append(Ack(raw, result, batch_member))
            first = len(self._pending) == 1
        if first:
            self._ready.set()

    def flush(self) -> int:
        """Ack everything pending now; returns how many were acked (0 if Redis failed)."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._sending = batch
            self._ready.clear()
        if not batch:
            return 0
        try:
            self._send(self._calls(batch))
        except RedisError:
            with self._lock:
                self._pending[:0] = batch
                self._sending = []
                self._ready.set()
            raise
        with self._lock:
            self._sending = []
        return len(batch)

    def _calls(self, acks: list[Ack]) -> list[Call]:
        kept = [(*a.result, a.batch_member[0] if a.batch_member else "") for a in acks if a.result]
        calls = [scripts.store_results(self.keys, results=kept)] if kept else []
        now_s = time.time()
        for i in range(0, len(acks), ACK_BATCH):
            chunk = acks[i:i + ACK_BATCH]
            members = [a.batch_member for a in chunk if a.batch_member]
            calls.append(scripts.ack(self.keys, self.identity, now_s, batch_members=members,
                                     raws=[a.raw for a in chunk]))
        return calls

    def _send(self, calls: list[Call]) -> None:
        if len(calls) == 1:  # the usual case: one EVALSHA costs less than a pipeline around it
            calls[0].run(self.scripts_conn)
            return
        errors = [r for r in scripts.run_many(self.redis, calls) if isinstance(r, Exception)]
        if errors:
            raise errors[0]

    def run(self, stop: threading.Event) -> None:
        """Flush loop for the acker thread; exits once ``stop`` is set and nothing is pending."""
        outage = Outage(log, "acker")
        while True:
            self._ready.wait(0.5)
            if stop.is_set() and not self._pending:
                return
            time.sleep(ACK_LINGER_S)
            try:
                self.flush()
                outage.ok()
            except RedisError as exc:
                outage.failed(exc, 1.0)
                if stop.wait(1.0) and time.monotonic() - (outage.since_s or 0.0) > ACK_GIVE_UP_S:
                    return  # stopping: the unacked jobs stay in flight and are recovered, never lost

    def flush_or_log(self) -> None:
        """``flush`` for a stopping worker: a Redis error is logged (those jobs stay in flight and may run again)."""
        try:
            self.flush()
        except RedisError as exc:
            log.error("cannot flush %d ack(s): %s; those jobs may run again", self.pending, exc)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def pending_raws(self) -> list[bytes]:
        """The finished jobs whose ack has not reached Redis yet, including a batch on its way (a copy)."""
        with self._lock:
            return [a.raw for a in (*self._sending, *self._pending)]
