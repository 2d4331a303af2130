"""Read and change state in Redis, for the CLI, the dashboard and tests.

Worker-side modules never import this package (Sidekiq's rule: the server does
not depend on the admin API). The one exception is the read side of metrics:
the supervisor's ``/metrics`` child process reads its gauges through
:meth:`Api.overview` at scrape time (:mod:`pyq.metrics.collector`), as
Sidekiq's ``metrics/query.rb`` does for its Web UI; worker processes never load it.

One module per Redis structure: ``queues`` (queue lists), ``sets`` (schedule /
retry / dead, one regular grid of ``set_*`` methods taking the set's name),
``processes`` (live processes, their work, remote signals), ``stats`` (the
headline numbers). :class:`Api` is the front door: it combines them over one
connection and namespace.
"""

from __future__ import annotations

from typing import Any

from ..job_progress import Progress
from ..job_progress import read_many as read_progress
from ..keys import Keys
from .entry import Entry
from .limits import LimiterUse, over_limit_total, read_limiters
from .processes import ProcessInfo, Work, read_processes, read_work, serving, signal_process
from .queues import QueueOps
from .sets import SORTED_SETS, SetOps
from .stats import Overview, overview

__all__ = ["SORTED_SETS", "Api", "Entry", "LimiterUse", "Overview", "ProcessInfo", "Work"]


class Api(QueueOps, SetOps):
    """Admin view over one Redis connection (and namespace)."""

    def __init__(self, redis: Any, keys: Keys | None = None) -> None:
        self.redis = redis
        self.keys = keys or Keys()

    # --- counters --------------------------------------------------------------------
    def stat(self, name: str) -> int:
        return int(self.redis.get(self.keys.stat(name)) or 0)

    def overview(self, now_s: float | None = None) -> Overview:
        """Counters, queues, set sizes and live processes, in two round trips."""
        return overview(self.redis, self.keys, now_s)

    # --- limiters --------------------------------------------------------------------
    def limiters(self, now_s: float | None = None) -> list[LimiterUse]:
        """Every limiter the workers used, with its limits, its use now and the jobs it rescheduled."""
        return read_limiters(self.redis, self.keys, now_s)

    def over_limit_total(self) -> int:
        """Jobs rescheduled as over a limit, by every limiter."""
        return over_limit_total(self.redis, self.keys)

    # --- processes -------------------------------------------------------------------
    def processes(self) -> list[ProcessInfo]:
        """Every live process (pyq and Ruby Sidekiq), sorted by identity."""
        return read_processes(self.redis, self.keys)

    def process_work(self, identity: str) -> list[Work]:
        """The jobs process ``identity`` is running now."""
        return read_work(self.redis, self.keys, identity)

    def queue_servers(self, processes: list[ProcessInfo] | None = None) -> dict[str, list[str]]:
        """Queue -> live, non-quiet processes that fetch from it; a queue missing here waits for nobody."""
        return serving(self.processes() if processes is None else processes)

    def busy(self, processes: list[ProcessInfo] | None = None) -> list[tuple[ProcessInfo, Work]]:
        """Every running job of every live process (pyq and Ruby Sidekiq), with the process running it."""
        procs = self.processes() if processes is None else processes
        return [(p, work) for p in procs for work in self.process_work(p.identity)]

    def progress(self, jids: list[str]) -> dict[str, Progress]:
        """jid -> the progress it last reported, for those of ``jids`` that reported any (one round trip)."""
        return read_progress(self.redis, self.keys, jids)

    def process_signal(self, identity: str, action: str) -> str:
        """Ask ``identity`` to ``quiet``, ``stop`` or ``dump``; returns the signal sent."""
        return signal_process(self.redis, self.keys, identity, action)
