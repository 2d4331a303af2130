"""Read and change state in Redis, for the CLI, the dashboard and tests.

Worker-side modules never import this package (Sidekiq's rule: the server does
not depend on the admin API). One module per Redis structure: ``queues``
(queue lists), ``sets`` (schedule / retry / dead, one regular grid of
``set_*`` methods taking the set's name). :class:`Api` combines them over one
connection and namespace.
"""

from __future__ import annotations

from typing import Any

from ..keys import Keys
from . import processes, stats  # noqa: F401 - process list and signals, headline numbers
from .entry import Entry
from .queues import QueueOps
from .sets import SORTED_SETS, SetOps

__all__ = ["SORTED_SETS", "Api", "Entry"]


class Api(QueueOps, SetOps):
    """Admin view over one Redis connection (and namespace)."""

    def __init__(self, redis: Any, keys: Keys | None = None) -> None:
        self.redis = redis
        self.keys = keys or Keys()

    # --- counters --------------------------------------------------------------------
    def stat(self, name: str) -> int:
        return int(self.redis.get(self.keys.stat(name)) or 0)
