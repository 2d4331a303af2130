"""Loads the Lua scripts in ``lua/``, calls them by SHA, and gives each one a typed wrapper.

Each script is one file with a header that lists its KEYS and ARGV. Shared
helpers live in ``lua/includes/`` and are pulled in with a line
``--- @include "includes/NAME"``; each include is inserted once, and a cycle
or a missing file is an error that names the chain of includes.

Every caller reaches a script through its wrapper below (``enqueue``, ``fetch``,
``ack``, ...): one function per script whose keyword parameters are the
script's ARGV slots in header order, so the KEYS and ARGV order lives in two
places only, the header and the wrapper (``tests/test_scripts_wrappers.py``
holds them together). A wrapper returns a :class:`Call`; ``call.run(redis)``
runs it, :func:`run_many` pipelines several.

Calls run EVALSHA; when Redis answers NOSCRIPT (after a restart or SCRIPT
FLUSH) the source is loaded again and the call repeated. Pipelined calls do
the same for just the calls that got NOSCRIPT, so a batch costs one round
trip in the common case (redis-py's own pipeline asks SCRIPT EXISTS first,
which would cost a second one).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

from redis.exceptions import NoScriptError, RedisError

from .cluster import route
from .config import Config
from .errors import PyqError
from .keys import STAT_DAY_TTL_S, Keys, utc_day

log = logging.getLogger("pyq.scripts")

_INCLUDE = re.compile(r'^--- @include "([\w/.-]+)"\s*$', re.MULTILINE)
_HEADER_SLOT = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\]\s+(\w+)", re.MULTILINE)

#: Most wake-up markers left on a queue's wake list: enough to rouse every idle worker process.
WAKE_CAP = 16


class ScriptLoadError(PyqError):
    """A script or include that cannot be read or assembled."""


def lua_dir() -> Path:
    """The ``lua/`` folder: inside an installed wheel (``pyq/lua``), else the checkout's top level."""
    packaged = Path(str(resources.files("pyq"))) / "lua"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "lua"
    if checkout.is_dir():
        return checkout
    raise ScriptLoadError(f"pyq's Lua scripts are missing: looked in {packaged} and {checkout}")


def assemble(name: str, root: Path | None = None) -> str:
    """The source of ``lua/NAME.lua`` with every include inserted once, in order."""
    root = root or lua_dir()
    seen: set[str] = set()

    def expand(rel: str, chain: tuple[str, ...]) -> str:
        path = root / f"{rel}.lua"
        try:
            text = path.read_text()
        except OSError:
            where = f" (included from {' -> '.join(chain)})" if chain else ""
            raise ScriptLoadError(f"Lua file not found: {path}{where}") from None
        seen.add(rel)

        def insert(match: re.Match[str]) -> str:
            inc = match.group(1)
            if inc in (*chain, rel):
                raise ScriptLoadError(f"include cycle: {' -> '.join((*chain, rel, inc))}")
            if inc in seen:
                return f"-- (included above: {inc})"
            return expand(inc, (*chain, rel))

        return _INCLUDE.sub(insert, text)

    return expand(name, ())


def header_slots(text: str) -> dict[str, list[str]]:
    """Names of the KEYS and ARGV slots a script's header documents, in order."""
    slots: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
    for kind, _index, _variadic, slot_name in _HEADER_SLOT.findall(text.split("\n\n", 1)[0]):
        slots[kind].append(slot_name)
    return slots


@functools.cache
def _compiled(name: str) -> tuple[str, str]:
    text = assemble(name)
    return text, hashlib.sha1(text.encode()).hexdigest()


class Scripts:
    """Runs pyq's scripts by SHA on a client, a pipeline, or a batch of calls."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def run(self, name: str, keys: Sequence[Any], args: Sequence[Any], client: Any = None) -> Any:
        """One call, one round trip (two after a Redis restart)."""
        client = client or self.client
        text, sha = _compiled(name)
        try:
            return client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(text)
            return client.evalsha(sha, len(keys), *keys, *args)

    def run_many(self, calls: Sequence[Call], client: Any = None, then: Sequence[Any] = ()) -> list[Any]:
        """Several calls in one pipeline; results in order, errors returned as exceptions.

        ``then`` is one command sent after the calls on the same connection (``WAIT`` for a durable
        push); its reply comes last.
        """
        client = client or self.client
        results = self._pipeline(client, calls, then)
        missing = [i for i, r in enumerate(results[:len(calls)]) if isinstance(r, NoScriptError)]
        if missing:
            for name in {calls[i][0] for i in missing}:
                client.script_load(_compiled(name)[0])
            again = self._pipeline(client, [calls[i] for i in missing], then)
            for i, result in zip(missing, again, strict=False):
                results[i] = result
            if then:  # the command must follow the calls that were run again
                results[-1] = again[-1]
        return results

    @staticmethod
    def _pipeline(client: Any, calls: Sequence[Call], then: Sequence[Any] = ()) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for name, keys, args in calls:  # a cluster pipeline refuses pipe.evalsha(), not the command itself
            pipe.execute_command("EVALSHA", _compiled(name)[1], len(keys), *keys, *args, **route(client, keys))
        if then:  # on a cluster, to the node the calls went to (WAIT counts that node's replicas)
            pipe.execute_command(*then, **route(client, calls[-1].keys if calls else ()))
        return pipe.execute(raise_on_error=False)


class Call(NamedTuple):
    """One script call, ready to run on a client or a pipeline, or to batch with :func:`run_many`."""

    script: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]

    def run(self, client: Any) -> Any:
        """Run it alone: one round trip (two after a Redis restart)."""
        return Scripts(client).run(self.script, self.keys, self.args)

    def run_retried(self, client: Any, *, attempts: int, what: str) -> Any:
        """Run it, trying again through a short outage (waits of 0.2 s doubling, at most 2 s); each failure is
        logged as "cannot WHAT (attempt N)", and the last one is raised."""
        for attempt in range(1, attempts + 1):
            try:
                return self.run(client)
            except RedisError as exc:
                log.error("cannot %s (attempt %d): %s", what, attempt, exc)
                if attempt == attempts:
                    raise
                time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
        raise ValueError(f"attempts must be >= 1, got {attempts}")


def run_many(client: Any, calls: Sequence[Call], then: Sequence[Any] = ()) -> list[Any]:
    """Several calls in one pipeline; results in order, errors returned as exceptions (``then``: see Scripts)."""
    return Scripts(client).run_many(calls, then=then) if calls else []


def named_args(call: Call) -> dict[str, Any]:
    """A call's ARGV by header slot name (an open-ended last slot gets the list of the rest)."""
    slots = _argv_slots(call.script)
    named = dict(zip((name for name, _ in slots), call.args, strict=False))
    if slots and slots[-1][1]:
        named[slots[-1][0]] = list(call.args[len(slots) - 1:])
    return named


@functools.cache
def _argv_slots(name: str) -> list[tuple[str, bool]]:
    header = _compiled(name)[0].split("\n\n", 1)[0]
    return [(slot, bool(variadic)) for kind, _, variadic, slot in _HEADER_SLOT.findall(header) if kind == "ARGV"]


@dataclass(frozen=True)
class DeadLimits:
    """How the dead set is trimmed on every insert: by age, then by count (Sidekiq's dead_timeout, dead_max_jobs)."""

    timeout_s: int
    max_jobs: int

    @classmethod
    def of(cls, config: Config) -> DeadLimits:
        return cls(timeout_s=config.dead_timeout_s, max_jobs=config.dead_max_jobs)

    @classmethod
    def default(cls) -> DeadLimits:
        """Config's defaults, for a client made without a config."""
        return cls.of(Config())


def _stats(keys: Keys, day: str) -> tuple[str, str, str, str]:
    """The failure counters every failing script bumps: processed, processed_day, failed, failed_day."""
    return keys.stat("processed"), keys.stat("processed", day), keys.stat("failed"), keys.stat("failed", day)


def _at(at_s: float | None) -> str:
    return "" if at_s is None else repr(float(at_s))


# --- one wrapper per script: positional = what the KEYS are built from, keywords = ARGV in header order ---


def enqueue(keys: Keys, queue_name: str, /, *, at_s: float | None, wake_cap: int = WAKE_CAP, priority: int = 0,
            payloads: Sequence[str]) -> Call:
    """Push encoded jobs of one ``priority`` to one queue now (``at_s`` None) or schedule them."""
    return Call("enqueue", (keys.queues, keys.queue(queue_name), keys.schedule, keys.wake(queue_name),
                            keys.prio(queue_name), keys.prio_seq),
                (queue_name, _at(at_s), wake_cap, priority, *payloads))


def fetch(keys: Keys, identity: str, queues: Sequence[str], /, *, count: int) -> Call:
    """Move up to ``count`` jobs from ``queues`` (in this order) into ``identity``'s in-flight list."""
    pairs = (key for name in queues for key in (keys.queue(name), keys.prio(name)))
    return Call("fetch", (keys.inflight(identity), keys.inflight_owners, *pairs), (identity, count))


#: How a batch member ended, as ``includes/batch.lua`` records it.
BatchOutcome = Literal["succeeded", "failed", "died"]


def ack(keys: Keys, identity: str, now_s: float | None = None, /, *, day_ttl_s: int = STAT_DAY_TTL_S,
        wake_cap: int = WAKE_CAP, batch_members: Sequence[tuple[str, str, BatchOutcome]] = (),
        raws: Sequence[bytes]) -> Call:
    """Drop finished jobs from the in-flight list, count them processed (on ``now_s``'s day), and settle
    the (bid, jid, outcome) of those that belong to a batch."""
    now_s = time.time() if now_s is None else now_s
    members = json.dumps([list(m) for m in batch_members]) if batch_members else ""
    return Call("ack", (keys.inflight(identity), keys.stat("processed"), keys.stat("processed", utc_day(now_s))),
                (day_ttl_s, keys.prefix, repr(float(now_s)), wake_cap, members, *raws))


def store_results(keys: Keys, /, *, results: Iterable[tuple[str, int, bytes, str]]) -> Call:
    """Store (jid, ttl_s, msgpack blob, bid or "") results of finished jobs, each under ``pyq:result:JID``."""
    results = list(results)
    return Call("store_results", tuple(keys.result(jid) for jid, *_ in results),
                (keys.prefix, *(x for result in results for x in result)))


def fail(keys: Keys, identity: str, /, *, raw: bytes, target: str, score: float, job: str, now_s: float,
         dead: DeadLimits, day_ttl_s: int = STAT_DAY_TTL_S, wake_cap: int = WAKE_CAP, bid: str = "",
         jid: str = "") -> Call:
    """A failed job leaves the in-flight list for the retry set, the dead set (trimmed) or nowhere; a job of
    batch ``bid`` is settled there as failed (or died)."""
    return Call("fail", (keys.inflight(identity), keys.retry, keys.dead, *_stats(keys, utc_day(now_s))),
                (raw, target, repr(float(score)), job, repr(float(now_s)), dead.timeout_s, dead.max_jobs,
                 day_ttl_s, keys.prefix, wake_cap, bid, jid))


def promote(keys: Keys, zset: Literal["retry", "schedule"], /, *, now_s: float, limit: int,
            enqueued_at: float | int, wake_cap: int = WAKE_CAP) -> Call:
    """Move up to ``limit`` due members of the retry or schedule set to their queues."""
    return Call("promote", (getattr(keys, zset), keys.queues),
                (keys.prefix, repr(float(now_s)), limit, repr(enqueued_at), wake_cap))


def recover(keys: Keys, identity: str, /, *, now_s: float, stale_after_s: float, wake_cap: int = WAKE_CAP,
            max_crashes: int, crash_ttl_s: int, dead: DeadLimits, day_ttl_s: int = STAT_DAY_TTL_S) -> Call:
    """Push a dead process's in-flight jobs back (burying the ones that crash it) and deregister it."""
    script_keys = (keys.inflight(identity), keys.inflight_owners, keys.queues, keys.processes,
                   keys.process(identity), keys.process_work(identity), keys.process_workers(identity),
                   keys.dead, *_stats(keys, utc_day(now_s)))
    return Call("recover", script_keys, (keys.prefix, identity, repr(float(now_s)), repr(float(stale_after_s)),
                                         wake_cap, max_crashes, crash_ttl_s, dead.timeout_s, dead.max_jobs,
                                         day_ttl_s))


def requeue(keys: Keys, identity: str, /, *, wake_cap: int = WAKE_CAP,
            pairs: Iterable[tuple[str, bytes]]) -> Call:
    """Put (queue, raw) jobs back at the front of their queues, those still in flight only."""
    return Call("requeue", (keys.inflight(identity), keys.queues),
                (keys.prefix, wake_cap, *(x for pair in pairs for x in pair)))


def reenqueue(keys: Keys, identity: str, queue_name: str, /, *, raw: bytes, payload: str,
              wake_cap: int = WAKE_CAP) -> Call:
    """A running job leaves ``identity``'s in-flight list for the back of its queue (as ``payload``)."""
    return Call("reenqueue", (keys.inflight(identity), keys.queues, keys.queue(queue_name), keys.wake(queue_name),
                              keys.prio(queue_name), keys.prio_seq),
                (queue_name, raw, payload, wake_cap))


def reschedule(keys: Keys, identity: str, /, *, raw: bytes, payload: str, at_s: float, limiter: str) -> Call:
    """A running job over ``limiter``'s limit leaves ``identity``'s in-flight list for the schedule set."""
    return Call("reschedule", (keys.inflight(identity), keys.schedule, keys.over_limit_count, keys.limiter_over),
                (raw, payload, repr(float(at_s)), limiter))


def limit_concurrent(keys: Keys, name: str, /, *, descriptor: str, limit: int, now_s: float, lock_timeout_s: float,
                     token: str) -> Call:
    """Take one lease of concurrent limiter ``name`` (lapsing after ``lock_timeout_s``): {1, 0} or {0, wait_ms}."""
    return Call("limit_concurrent", (keys.limiter("c", name), keys.limiters),
                (name, descriptor, limit, repr(float(now_s)), repr(float(lock_timeout_s)), token))


def limit_release(keys: Keys, name: str, /, *, token: str) -> Call:
    """Give back the lease ``token`` of concurrent limiter ``name``."""
    return Call("limit_release", (keys.limiter("c", name),), (token,))


def limit_window(keys: Keys, name: str, /, *, descriptor: str, count: int, seconds: float, now_s: float,
                 token: str) -> Call:
    """Count one operation against sliding-window limiter ``name``: {1, 0} or {0, wait_ms}."""
    return Call("limit_window", (keys.limiter("w", name), keys.limiters),
                (name, descriptor, count, repr(float(seconds)), repr(float(now_s)), token))


def limit_bucket(keys: Keys, name: str, /, *, descriptor: str, count: int, seconds: float, now_s: float) -> Call:
    """Count one operation against bucket limiter ``name``: {1, 0} or {0, wait_ms}."""
    return Call("limit_bucket", (keys.limiter("b", name), keys.limiters),
                (name, descriptor, count, repr(float(seconds)), repr(float(now_s))))


def limit_leaky(keys: Keys, name: str, /, *, descriptor: str, count: int, seconds: float, now_s: float) -> Call:
    """Pour one operation into leaky-bucket limiter ``name``: {1, 0} or {0, wait_ms}."""
    return Call("limit_leaky", (keys.limiter("l", name), keys.limiters),
                (name, descriptor, count, repr(float(seconds)), repr(float(now_s))))


def lock_push(keys: Keys, digest: str, queue_name: str, /, *, jid: str, pttl: int, lock_type: str,
              lock_score: str, now_s: float, at_s: float | None, wake_cap: int = WAKE_CAP, priority: int = 0,
              payload: str | None = None) -> Call:
    """Take ``digest``'s uniqueness lock for ``jid`` and, when taken, push ``payload`` (None: lock only)."""
    script_keys = (keys.unique(digest), keys.unique(digest, "LOCKED"), keys.unique_digests,
                   keys.unique_expiring_digests, keys.queues, keys.queue(queue_name), keys.schedule,
                   keys.wake(queue_name), keys.prio(queue_name), keys.prio_seq)
    args = (jid, pttl, lock_type, lock_score, repr(float(now_s)), queue_name, _at(at_s), wake_cap, priority)
    return Call("lock_push", script_keys, args if payload is None else (*args, payload))


def unlock(keys: Keys, digest: str, /, *, jid: str, lock_type: str) -> Call:
    """Release ``digest``'s lock if ``jid`` holds it (or nobody does)."""
    family = (keys.unique(digest, suffix) for suffix in ("", "QUEUED", "PRIMED", "LOCKED", "INFO"))
    return Call("unlock", (*family, keys.unique_digests), (jid, lock_type))


def kill(keys: Keys, source: Literal["retry", "schedule"] | None = None, /, *, job: str | bytes, now_s: float,
         dead: DeadLimits) -> Call:
    """Bury ``job`` in the dead set now (trimmed); with ``source``, only if it still leaves that set."""
    script_keys = (keys.dead,) if source is None else (keys.dead, getattr(keys, source))
    return Call("kill", script_keys, (job, repr(float(now_s)), dead.timeout_s, dead.max_jobs))


#: Seconds Sidekiq 7.3 keeps an ``it-JID`` iteration hash (its ``STATE_TTL``: 30 days).
ITERATION_TTL_S = 30 * 24 * 3600


def cancel(keys: Keys, jid: str, source_key: str, /, *, kind: Literal["list", "zset", "running"], member: str | bytes,
           now_s: float, audit_ttl_s: int, iteration_ttl_s: int = ITERATION_TTL_S, entry: str,
           wake_cap: int = WAKE_CAP) -> Call:
    """Remove ``member`` from ``source`` (a full key), or flag the running job; audit and count it (and settle
    a batch job taken out as failed)."""
    return Call("cancel", (source_key, keys.cancelled, keys.iteration(jid), keys.cancelled_count),
                (kind, member, repr(float(now_s)), audit_ttl_s, iteration_ttl_s, entry, keys.prefix, jid, wake_cap))


# --- batches (pyq.batches): b-BID, b-BID-jids, b-BID-failed, b-BID-died, b-BID-results, batches ---


def batch_open(keys: Keys, bid: str, /, *, now_s: float, expires_at_s: float, guard: bool, description: str = "",
               parent: str = "", time_style: str = "", callbacks: Iterable[tuple[str, str, str, str]] = ()) -> Call:
    """Create batch ``bid`` (given a ``time_style``) or open it again; ``guard`` holds it open until closed.

    ``callbacks`` are (event, queue, jid, payload without enqueued_at).
    """
    return Call("batch_open", (keys.batch(bid), keys.batches),
                (keys.prefix, bid, repr(float(now_s)), repr(float(expires_at_s)), int(guard), description, parent,
                 time_style, *(x for callback in callbacks for x in callback)))


def batch_push(keys: Keys, bid: str, queue_name: str, /, *, at_s: float | None, wake_cap: int = WAKE_CAP,
               priority: int = 0, jids: Sequence[str], payloads: Sequence[str]) -> Call:
    """:func:`enqueue` for jobs of batch ``bid``: each becomes a member as it is pushed, in the same step."""
    return Call("batch_push", (keys.queues, keys.queue(queue_name), keys.schedule, keys.wake(queue_name),
                               keys.prio(queue_name), keys.prio_seq, keys.batch(bid), keys.batch_jids(bid)),
                (queue_name, _at(at_s), wake_cap, priority, json.dumps(list(jids)), *payloads))


def batch_add(keys: Keys, bid: str, /, *, jids: Sequence[str]) -> Call:
    """Make ``jids`` members of batch ``bid`` before they are pushed."""
    return Call("batch_add", (keys.batch(bid), keys.batch_jids(bid)), tuple(jids))


def batch_forget(keys: Keys, bid: str, /, *, jids: Sequence[str]) -> Call:
    """Drop members that were added but never pushed."""
    return Call("batch_forget", (keys.batch(bid), keys.batch_jids(bid)), tuple(jids))


def batch_close(keys: Keys, bid: str, /, *, now_s: float, wake_cap: int = WAKE_CAP) -> Call:
    """Release one hold on batch ``bid`` and fire the callbacks now due."""
    return Call("batch_close", (keys.batch(bid),), (keys.prefix, bid, repr(float(now_s)), wake_cap))
