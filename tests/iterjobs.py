"""Iterable and progress-reporting jobs for the iteration tests; each records what it did in Redis."""

from __future__ import annotations

import time
from typing import Any

import pyq
from pyq.iteration import range_enumerator

SEEN = "iter:seen"    #: hash item -> times each_iteration ran for it
HOOKS = "iter:hooks"  #: list of hook names, in call order
DONE = "iter:done"    #: list of items finished, in order


def _redis() -> Any:
    ctx = pyq.current()
    assert ctx is not None
    return ctx.redis


class Recording(pyq.IterableJob):
    """Counts each item in ``iter:seen``; every hook appends its name (and the run number) to ``iter:hooks``."""

    def build_enumerator(self, count: int, pause_s: float, *, cursor: Any) -> Any:
        return range_enumerator(0, count, cursor=cursor)

    def each_iteration(self, item: int, count: int, pause_s: float) -> None:
        redis = _redis()
        redis.hincrby(SEEN, str(item), 1)
        redis.rpush(DONE, item)
        time.sleep(pause_s)

    def _hook(self, name: str) -> None:
        _redis().rpush(HOOKS, f"{name}:{self.executions}")

    def on_start(self) -> None:
        self._hook("start")

    def on_resume(self) -> None:
        self._hook("resume")

    def on_stop(self) -> None:
        self._hook("stop")

    def on_cancel(self) -> None:
        self._hook("cancel")

    def on_complete(self) -> None:
        self._hook("complete")


class ShortRuns(Recording):
    """The same, sent back to its queue after every 0.3 s of running."""

    max_iteration_runtime = 0.3


@pyq.job
def tight_progress(count: int) -> None:
    """Reports progress after every one of ``count`` tiny steps."""
    ctx = pyq.current()
    assert ctx is not None
    for i in range(1, count + 1):
        ctx.progress(i, count, "crunching")
