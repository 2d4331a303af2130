"""The four limiters of Sidekiq Enterprise's model, global across processes and hosts: each check is one
Lua call (``lua/limit_*.lua``) that decides and records atomically (see :mod:`pyq.limiter.base` for
what they share).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import scripts
from ..keys import Keys
from ..scripts import Call
from .base import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_WAIT_TIMEOUT_S, Limiter


class Concurrent(Limiter):
    """At most ``limit`` holders at once; a lease lapses ``lock_timeout`` seconds after it was taken."""

    kind = "concurrent"

    def __init__(self, name: str, limit: int, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
                 wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S, **options: Any) -> None:
        super().__init__(name, wait_timeout=wait_timeout, **options)
        self.limit, self.lock_timeout_s = _count(name, "limit", limit), _positive(name, "lock_timeout", lock_timeout)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "limit": self.limit, "lock_timeout": self.lock_timeout_s}

    def acquire_call(self, keys: Keys, now_s: float, token: str) -> Call:
        return scripts.limit_concurrent(keys, self.name, descriptor=self._descriptor(), limit=self.limit,
                                        now_s=now_s, lock_timeout_s=self.lock_timeout_s, token=token)

    def release_call(self, keys: Keys, token: str) -> Call:
        return scripts.limit_release(keys, self.name, token=token)


class _Rate(Limiter):
    """``count`` operations per ``seconds``; what "per" means is each kind's script."""

    def __init__(self, name: str, count: int, seconds: float, *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
                 **options: Any) -> None:
        super().__init__(name, wait_timeout=wait_timeout, **options)
        self.count, self.seconds = _count(name, "count", count), _positive(name, "seconds", seconds)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "seconds": self.seconds}


class Window(_Rate):
    """At most ``count`` operations in any ``seconds``-long sliding window."""

    kind = "window"

    def acquire_call(self, keys: Keys, now_s: float, token: str) -> Call:
        return scripts.limit_window(keys, self.name, descriptor=self._descriptor(), count=self.count,
                                    seconds=self.seconds, now_s=now_s, token=token)


class Bucket(_Rate):
    """``count`` operations per interval of ``seconds`` (intervals aligned to the epoch, each starts full)."""

    kind = "bucket"

    def acquire_call(self, keys: Keys, now_s: float, token: str) -> Call:
        return scripts.limit_bucket(keys, self.name, descriptor=self._descriptor(), count=self.count,
                                    seconds=self.seconds, now_s=now_s)


class Leaky(_Rate):
    """A bucket of ``count`` that drains in ``seconds``: bursts up to ``count``, then one every seconds/count."""

    kind = "leaky"

    def acquire_call(self, keys: Keys, now_s: float, token: str) -> Call:
        return scripts.limit_leaky(keys, self.name, descriptor=self._descriptor(), count=self.count,
                                   seconds=self.seconds, now_s=now_s)


def _count(name: str, what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"limiter {name!r}: {what} must be an int >= 1, got {value!r}")
    return value


def _positive(name: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"limiter {name!r}: {what} must be seconds > 0, got {value!r}")
    return float(value)


#: What makes a limiter from a job's arguments (``limits_concurrency``'s key).
KeyFn = Callable[..., Any]
