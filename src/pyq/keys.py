"""Every Redis key name pyq reads or writes, and nowhere else.

Sidekiq's keys carry no prefix; an optional namespace (the redis-namespace
convention of Sidekiq 6 apps, ``ns:`` before every key) is supported so that
several apps can share one Redis database. pyq's private state lives under
``pyq:`` so it can never collide with a Sidekiq name.

With ``cluster`` on (Redis Cluster) the prefix is a hash tag, ``{ns}:`` or, without a
namespace, ``{pyq}:``: every key of the deployment hashes to one slot, so every script,
transaction and multi-key command stays within it (BullMQ's layout). Those names are no
longer Sidekiq's, so Ruby Sidekiq cannot share a cluster deployment.

Lua scripts that must build a key from a payload field (``queue:NAME`` from a
job's ``queue``) receive :attr:`Keys.prefix` as an argument and build it the
same way as :meth:`Keys.queue`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Seconds a per-day stat key lives (Sidekiq: 5 years, re-set on each flush).
STAT_DAY_TTL_S = 157_680_000
#: Seconds a process hash lives after its last beat (Sidekiq: 60).
PROCESS_TTL_S = 60
#: The hash tag of a cluster deployment without a namespace: every key starts ``{pyq}:``.
CLUSTER_TAG = "pyq"
#: The characters of a queue name, as the rule's text in error messages (the Web UI's rule).
QUEUE_NAME_RULE = "letters, digits, _ : . -"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_:.\-]+")


def is_queue_name(name: Any) -> bool:
    """The one rule for queue names: what the client may push to is what a worker may serve.

    Sidekiq's Web UI only opens queues named with letters, digits, ``_ : . -``; the config
    (``queues``, ``-q``) and the client (``queue``, ``retry_queue``) both ask this function, so no
    job can sit in a queue that no pyq worker would be allowed to serve.
    """
    return isinstance(name, str) and _QUEUE_NAME.fullmatch(name) is not None


def utc_day(now_s: float | None = None) -> str:
    """Sidekiq's per-day stat suffix (``stat:processed:YYYY-MM-DD``): the UTC date."""
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now_s is None else now_s))


class Fixed:
    """A key with a fixed name (``keys.retry``), read as an attribute."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, keys: Keys, owner: type | None = None) -> str:
        return keys.prefix + self.name


class Named:
    """A key built from one name (``keys.queue("default")``): ``template`` with ``{}`` for the name."""

    def __init__(self, template: str) -> None:
        self.template = template

    def __get__(self, keys: Keys, owner: type | None = None) -> Callable[[str], str]:
        return lambda name: keys.prefix + self.template.format(name)


@dataclass(frozen=True)
class Keys:
    """Key builder for one namespace (``""`` = Sidekiq's plain keys): the whole layout, one line a key."""

    namespace: str = ""
    cluster: bool = False  # Redis Cluster: the prefix is one hash tag, so every key lands in one slot

    def __post_init__(self) -> None:
        if self.cluster and ("{" in self.namespace or "}" in self.namespace):
            raise ValueError(f"a cluster namespace cannot hold braces: {self.namespace!r}")

    @property
    def prefix(self) -> str:
        """The string put before every key: ``""`` or ``"ns:"``; on a cluster ``"{ns}:"`` or ``"{pyq}:"``."""
        if self.cluster:
            return f"{{{self.namespace or CLUSTER_TAG}}}:"
        return f"{self.namespace}:" if self.namespace else ""

    def _k(self, name: str) -> str:
        return self.prefix + name

    # --- Sidekiq's keys -------------------------------------------------
    queues = Fixed("queues")                   #: set of queue names
    queue = Named("queue:{}")                  #: list of a queue's payloads (LPUSH in, taken from the tail)
    schedule = Fixed("schedule")               #: zset of scheduled jobs, scored by run-at
    retry = Fixed("retry")                     #: zset of jobs to retry, scored by retry-at
    dead = Fixed("dead")                       #: zset of dead jobs, scored by death time
    processes = Fixed("processes")             #: set of live process identities
    process = Named("{}")                      #: a process's hash (info, beat, busy, quiet, ...)
    process_work = Named("{}:work")            #: its running jobs, the Sidekiq 6.5+ name
    process_workers = Named("{}:workers")      #: its running jobs, the Sidekiq 6.0-6.4 name
    process_signals = Named("{}-signals")      #: its remote signals (the Web UI's Quiet and Stop)
    process_cleanup = Fixed("process_cleanup")  #: the lock of the once-a-minute registry prune
    iteration = Named("it-{}")                 #: an iterable job's state (Sidekiq 7.3): ex, c, rt, cancelled

    def stat(self, name: str, day: str | None = None) -> str:
        """``stat:processed`` or ``stat:processed:YYYY-MM-DD`` (UTC day)."""
        return self._k(f"stat:{name}:{day}" if day else f"stat:{name}")

    # --- Sidekiq 7/8 execution metrics (the Web UI's Metrics tab) ----------------
    #: per-minute (or per-10-minute) counters: ``j|YYYYMMDD|H:M`` (S7) or ``j|YYMMDD|H:MM`` (S8)
    metrics_hash = Named("j|{}")
    #: run-time histogram: ``CLASS-DD-HH:M`` (S7) or ``h|CLASS-D-H:M`` (S8)
    metrics_histogram = Named("{}")

    # --- pyq's own keys ---------------------------------------------------
    inflight = Named("pyq:inflight:{}")        #: raw payloads a process fetched and has not finished
    wake = Named("pyq:wake:{}")                #: wake-up markers that pyq's enqueue and promotion push
    inflight_owners = Fixed("pyq:inflight-owners")  #: identities owning an in-flight list (orphan recovery)
    result = Named("pyq:result:{}")            #: a job's stored result: a list of one msgpack blob (results.py)
    crashes = Named("pyq:crashes:{}")          #: worker crashes while running one jid (poison-job guard)
    progress = Named("pyq:progress:{}")        #: a job's reported progress: done, total, message, at
    cancelled = Fixed("pyq:cancelled")         #: zset audit of cancelled jobs, scored by cancel time
    cancelled_count = Fixed("pyq:stat:cancelled")  #: how many jobs pyq.cancel found and cancelled
    cancel_channel = Fixed("pyq:cancel")       #: pub/sub channel: the jid of a running job just cancelled
    prio = Named("pyq:prio:{}")                #: zset of a queue's jobs with a non-default priority (priority.py)
    prio_seq = Fixed("pyq:prio-seq")           #: counter giving prioritised jobs their FIFO order

    # --- limiters (Sidekiq Enterprise's lmtr- names, under pyq: since the structures differ) ------
    limiters = Fixed("pyq:limiters")           #: hash: limiter name -> its kind and limits (JSON), for the CLI
    limiter_over = Fixed("pyq:limiters:over")  #: hash: limiter name -> jobs it rescheduled as over the limit
    over_limit_count = Fixed("pyq:stat:over_limit")  #: jobs rescheduled as over a limit, all limiters

    def limiter(self, kind: str, name: str) -> str:
        """A limiter's state: ``pyq:lmtr-c-NAME`` (concurrent leases), ``-w-`` window log, ``-b-`` / ``-l-`` buckets."""
        return self._k(f"pyq:lmtr-{kind}-{name}")

    # batches, with Sidekiq Pro's names (pyq.batches; the Lua of includes/batch.lua builds the same names)
    batch = Named("b-{}")                      #: a batch's hash: counters, flags, callbacks, parent
    batch_jids = Named("b-{}-jids")            #: members that have not succeeded yet: jids, and b-CHILD
    batch_failed = Named("b-{}-failed")        #: members that failed at least once and have not succeeded
    batch_died = Named("b-{}-died")            #: jids of members that went to the dead set
    batch_results = Named("b-{}-results")      #: jids of members with a stored result
    batches = Fixed("batches")                 #: zset of batch ids, scored by their expiry

    # --- sidekiq-cron (2.x layout with a namespace; 1.x without) ----------------
    def cron_jobs(self, namespace: str | None = "default") -> str:
        """Set of cron hash keys: ``cron_jobs:NS`` (2.x) or ``cron_jobs`` (1.x, namespace None)."""
        return self._k(f"cron_jobs:{namespace}" if namespace else "cron_jobs")

    def cron_job(self, name: str, namespace: str | None = "default") -> str:
        """One schedule's hash: ``cron_job:NS:NAME`` (2.x) or ``cron_job:NAME`` (1.x)."""
        return self._k(f"cron_job:{namespace}:{name}" if namespace else f"cron_job:{name}")

    def cron_enqueued(self, name: str, namespace: str | None = "default") -> str:
        """Zset of fire times already enqueued (the exactly-once-per-tick guard)."""
        return self.cron_job(name, namespace) + ":enqueued"

    def cron_jid_history(self, name: str, namespace: str | None = "default") -> str:
        return self.cron_job(name, namespace) + ":jid_history"

    # --- sidekiq-unique-jobs v8 ---------------------------------------------------
    def unique(self, digest: str, suffix: str = "") -> str:
        """``uniquejobs:HEX`` or ``uniquejobs:HEX:LOCKED`` etc.; ``digest`` already has its prefix."""
        return self._k(f"{digest}:{suffix}" if suffix else digest)

    @property
    def unique_digests(self) -> str:
        return self._k("uniquejobs:digests")

    @property
    def unique_expiring_digests(self) -> str:
        return self._k("uniquejobs:expiring_digests")
