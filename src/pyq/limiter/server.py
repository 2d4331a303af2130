"""The ``limits=[...]`` and ``limits_concurrency=(to, key)`` job options: a server middleware that takes
every limiter of the job before it runs and gives back the concurrent leases after.

``limits_concurrency`` is Solid Queue's ``limits_concurrency to:, key:, duration:``: at most ``to`` jobs
with the same key run at once, where the key comes from the job's arguments (``key(*args)``, or a fixed
string). It is a concurrent limiter named ``JOB:KEY`` whose lease lapses after ``duration`` seconds
(Solid Queue's default: 3 minutes) and that does not wait: a job that finds no room is rescheduled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack
from typing import Any

from .base import Limiter
from .kinds import Concurrent

#: Seconds a ``limits_concurrency`` lease lasts (Solid Queue's default ``duration``: 3 minutes).
CONCURRENCY_DURATION_S = 180.0
#: The job options this package reads (policy options: they stay in Python).
OPTIONS = ("limits", "limits_concurrency")


def check_options(policy: Mapping[str, Any], name: str) -> None:
    """Refuse a malformed ``limits`` / ``limits_concurrency`` when the job is defined (TypeError)."""
    limits = policy.get("limits")
    if limits is not None and not (isinstance(limits, Sequence) and all(isinstance(x, Limiter) for x in limits)):
        raise TypeError(f"{name}: limits must be a list of pyq.limiter limiters, got {limits!r}")
    spec = policy.get("limits_concurrency")
    if spec is None:
        return
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise TypeError(f"{name}: limits_concurrency must be (to, key) or (to, key, duration_s), got {spec!r}")
    to, key = spec[0], spec[1]
    if isinstance(to, bool) or not isinstance(to, int) or to < 1:
        raise TypeError(f"{name}: limits_concurrency's to must be an int >= 1, got {to!r}")
    if not (callable(key) or isinstance(key, str)):
        raise TypeError(f"{name}: limits_concurrency's key must be a callable of the job's args or a string")
    if len(spec) == 3 and (isinstance(spec[2], bool) or not isinstance(spec[2], (int, float)) or spec[2] <= 0):
        raise TypeError(f"{name}: limits_concurrency's duration must be seconds > 0, got {spec[2]!r}")


def limiters_for(definition: Any, args: Sequence[Any]) -> list[Limiter]:
    """The limiters one run of the job takes, in order: ``limits``, then its ``limits_concurrency``."""
    found = list(definition.policy.get("limits") or ())
    spec = definition.policy.get("limits_concurrency")
    if spec is not None:
        to, key = spec[0], spec[1]
        value = key(*args) if callable(key) else key
        duration = float(spec[2]) if len(spec) == 3 else CONCURRENCY_DURATION_S
        found.append(Concurrent(f"{definition.name}:{value}", to, lock_timeout=duration, wait_timeout=0))
    return found


def middleware_for(definition: Any) -> list[Callable[..., Any]]:
    """The processor's chain entry for a job with limits; none (nothing on the hot path) for the others."""
    policy = definition.policy
    return [server_middleware] if policy.get("limits") or policy.get("limits_concurrency") else []


class _LimitsMiddleware:
    """Holds every limiter of the job around the run (a sync job in its thread, an async one on the loop)."""

    def __call__(self, ctx: Any, call_next: Callable[[], Any]) -> Any:
        with ExitStack() as stack:
            for limiter in limiters_for(ctx.definition, ctx.args):
                stack.enter_context(limiter)
            return call_next()

    async def async_call(self, ctx: Any, call_next: Callable[[], Any]) -> Any:
        async with AsyncExitStack() as stack:
            for limiter in limiters_for(ctx.definition, ctx.args):
                await stack.enter_async_context(limiter)
            return await call_next()


server_middleware = _LimitsMiddleware()
