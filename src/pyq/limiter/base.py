"""What every limiter does: take room within ``wait_timeout`` or raise :class:`OverLimit`, as a context
manager, and, inside a job, turn a full limiter into a reschedule.

A limiter is made once (at import time, like a job) and shared by every thread. ``with limiter:`` waits
up to ``wait_timeout`` seconds for room, then raises :class:`OverLimit`; inside a job, that exception
reschedules the job instead of failing it (:mod:`pyq.limiter.backoff`). Time comes from this host's
clock (the project's rule: scripts never read TIME), so hosts sharing a limiter need synchronised clocks.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import os
import random
import secrets
import time
from typing import Any, NamedTuple

from redis.exceptions import RedisError

from .. import context
from ..errors import PyqError, Rescheduled
from ..keys import Keys
from ..scripts import Call
from .backoff import DEFAULT_RESCHEDULES, Backoff, default_delay_s, overrated_of

log = logging.getLogger("pyq.limiter")

#: Seconds between two tries of a concurrent limiter that is full (Redis has no wake-up for a lapsed lease).
POLL_S = 0.02
#: Seconds between two registrations of a limiter in ``pyq:limiters`` by one process (the first check
#: registers it; after that one check in this interval does, so a flushed registry fills again).
REGISTER_EVERY_S = 60.0
#: Sidekiq Enterprise's defaults: wait 5 s for room; a concurrent lease lapses 30 s after it was taken.
DEFAULT_WAIT_TIMEOUT_S = 5.0
DEFAULT_LOCK_TIMEOUT_S = 30.0


class OverLimit(PyqError):
    """No room in ``limiter`` within its ``wait_timeout``; ``wait_s`` = when it may have room again."""

    wire_name = "pyq.limiter.OverLimit"  #: its ``error_class`` in the retry and dead sets

    def __init__(self, limiter: str, wait_s: float) -> None:
        # Exception's own __init__, not super(): in Reschedule the next class is Rescheduled, set up there.
        Exception.__init__(self, f"over the limit of limiter {limiter!r} (room again in about {wait_s:.2f}s)")
        self.limiter, self.wait_s = limiter, wait_s


class Reschedule(OverLimit, Rescheduled):
    """An :class:`OverLimit` inside a job with reschedules left: the job runs again later, not as a failure."""

    def __init__(self, limiter: str, wait_s: float, delay_s: float) -> None:
        OverLimit.__init__(self, limiter, wait_s)
        self.delay_s, self.reason = delay_s, limiter


class Lease(NamedTuple):
    """What ``with limiter as lease:`` holds: for a concurrent limiter, ``token`` is the member of its lease."""

    limiter: Limiter
    token: str


class Limiter:
    """One named limiter. ``with limiter:`` / ``async with limiter:`` around the limited call."""

    kind = ""

    def __init__(self, name: str, *, wait_timeout: float, backoff: Backoff | None = None,
                 reschedule: int = DEFAULT_RESCHEDULES, client: Any = None) -> None:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"a limiter name is a non-empty string without spaces, got {name!r}")
        if wait_timeout < 0:
            raise ValueError(f"limiter {name!r}: wait_timeout must be >= 0, got {wait_timeout!r}")
        self.name, self.wait_timeout_s, self.backoff, self.reschedule = name, float(wait_timeout), backoff, reschedule
        self._client = client
        self._registered_at: float | None = None
        self._held: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(f"pyq-limiter-{name}", default=())

    # --- what each kind says -------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The limiter's kind and limits, stored in ``pyq:limiters`` for ``pyq limits`` and the dashboard."""
        raise NotImplementedError

    def acquire_call(self, keys: Keys, now_s: float, token: str) -> Call:
        raise NotImplementedError

    def release_call(self, keys: Keys, token: str) -> Call | None:
        """The call that frees what ``token`` took (None: a rate limiter frees nothing)."""
        return None

    # --- taking and giving back ------------------------------------------------------------
    def try_acquire(self, redis: Any, keys: Keys) -> tuple[str | None, float]:
        """One try: (token, 0) when there was room, else (None, seconds until there may be)."""
        token = _new_token()
        taken, wait_ms = self.acquire_call(keys, time.time(), token).run(redis)
        return (token, 0.0) if taken else (None, int(wait_ms) / 1000)

    def acquire(self, redis: Any = None, keys: Keys | None = None) -> str:
        """Wait up to ``wait_timeout`` for room; the token to release, or :class:`OverLimit`."""
        redis, keys = self._where(redis, keys)
        if redis is None:
            return _GRANTED
        deadline = time.monotonic() + self.wait_timeout_s
        while True:
            token, pause = self._attempt(redis, keys, deadline)
            if token is not None:
                return token
            time.sleep(pause)

    async def acquire_async(self, redis: Any = None, keys: Keys | None = None) -> str:
        """``acquire`` for an ``async def`` job: it waits with ``asyncio.sleep``, not blocking the loop."""
        redis, keys = self._where(redis, keys)
        if redis is None:
            return _GRANTED
        deadline = time.monotonic() + self.wait_timeout_s
        while True:
            token, pause = self._attempt(redis, keys, deadline)
            if token is not None:
                return token
            await asyncio.sleep(pause)

    def _attempt(self, redis: Any, keys: Keys, deadline: float) -> tuple[str | None, float]:
        """One try of ``acquire``: (token, 0) when taken, else (None, seconds to pause); :class:`OverLimit` once
        the wait is over."""
        token, wait_s = self.try_acquire(redis, keys)
        if token is not None:
            return token, 0.0
        pause = self._pause_s(wait_s, deadline)
        if pause is None:
            raise self.over_limit(wait_s)
        return None, pause

    def release(self, token: str, redis: Any = None, keys: Keys | None = None) -> None:
        redis, keys = self._where(redis, keys)
        call = self.release_call(keys, token)
        if call is not None and redis is not None:
            call.run(redis)

    def _pause_s(self, wait_s: float, deadline: float) -> float | None:
        """How long to sleep before the next try, or None when room cannot come before the deadline."""
        left = deadline - time.monotonic()
        pause = min(wait_s, POLL_S * random.uniform(0.5, 1.5)) if self.kind == "concurrent" else wait_s
        return pause if left > 0 and pause <= left else None

    def over_limit(self, wait_s: float) -> OverLimit:
        """Inside a job with reschedules left, a :class:`Reschedule` (after the delay :mod:`.backoff` gives);
        else, and outside a job, a plain :class:`OverLimit`."""
        ctx = context.current()
        overrated = overrated_of(ctx.job) if ctx is not None else 0
        if ctx is None or overrated >= self.reschedule:
            return OverLimit(self.name, wait_s)
        rule = self.backoff
        delay_s = float(rule(overrated, wait_s)) if rule is not None else default_delay_s(self.kind, overrated, wait_s)
        return Reschedule(self.name, wait_s, max(0.0, delay_s))

    def _where(self, redis: Any, keys: Keys | None) -> tuple[Any, Keys]:
        """The Redis to check: the one given, the running job's, else the client's (None in pyq.testing's
        modes, where a limiter always has room, as uniqueness locks are granted there)."""
        if redis is not None:
            return redis, keys or Keys()
        ctx = context.current()
        if ctx is not None:
            return ctx.redis, ctx.keys
        client = self._client
        if client is None:
            from ..client import default_client

            client = default_client()
        return (client.redis if client.stores_in_redis else None), client.keys

    # --- context managers -------------------------------------------------------------------
    def __enter__(self) -> Lease:
        token = self.acquire()
        self._held.set((*self._held.get(), token))
        return Lease(self, token)

    def __exit__(self, *exc: object) -> None:
        self._give_back()

    async def __aenter__(self) -> Lease:
        token = await self.acquire_async()
        self._held.set((*self._held.get(), token))
        return Lease(self, token)

    async def __aexit__(self, *exc: object) -> None:
        self._give_back()

    def _give_back(self) -> None:
        """Release the innermost lease; a Redis error is logged, not raised: the limited work is done, and
        the lease lapses by itself after ``lock_timeout``."""
        held = self._held.get()
        self._held.set(held[:-1])
        if not held:
            return
        try:
            self.release(held[-1])
        except RedisError as exc:
            log.warning("cannot release a lease of limiter %r (%s); it lapses after its lock_timeout", self.name, exc)

    def _descriptor(self) -> str:
        """The registry entry to write with this check, or "" when this process wrote it lately."""
        now = time.monotonic()
        if self._registered_at is not None and now - self._registered_at < REGISTER_EVERY_S:
            return ""
        self._registered_at = now
        return json.dumps(self.describe(), separators=(",", ":"), sort_keys=True)

    def __repr__(self) -> str:
        return f"<pyq limiter {self.kind} {self.name!r} {self.describe()}>"


#: The token of a lease granted without Redis (pyq.testing's modes).
_GRANTED = "granted-without-redis"
_token_source: tuple[int, str, itertools.count[int]] | None = None


def _new_token() -> str:
    """A lease token unique across processes and hosts: a random prefix per process, then a counter."""
    global _token_source
    if _token_source is None or _token_source[0] != os.getpid():
        _token_source = (os.getpid(), secrets.token_hex(6), itertools.count())
    return f"{_token_source[1]}-{next(_token_source[2])}"
