"""Concurrency and rate limits shared by every process and host on one Redis (Sidekiq Enterprise's model).

::

    STRIPE = pyq.limiter.concurrent("stripe", 5, lock_timeout=30, wait_timeout=5)
    MAIL = pyq.limiter.window("mail", 100, 60)

    @pyq.job(limits=[STRIPE])           # taken before the job runs, given back after
    def charge(order_id): ...

    @pyq.job()
    def send(address):
        with MAIL:                      # or around just the limited call
            smtp_send(address)

A job that finds no room within ``wait_timeout`` is rescheduled (:mod:`pyq.limiter.backoff`): not a
failure, no retry used, counted in ``pyq:stat:over_limit``, per limiter in ``pyq:limiters:over`` and in
``pyq_jobs_over_limit_total``. Outside a job, :class:`OverLimit` is raised to the caller.
"""

from __future__ import annotations

from typing import Any

from .backoff import DEFAULT_RESCHEDULES, Backoff
from .base import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_WAIT_TIMEOUT_S, Lease, Limiter, OverLimit
from .kinds import Bucket, Concurrent, Leaky, Window
from .server import check_options, middleware_for

__all__ = ["Bucket", "Concurrent", "Leaky", "Lease", "Limiter", "OverLimit", "Window", "bucket", "check_options",
           "concurrent", "leaky", "middleware_for", "window"]


def concurrent(name: str, limit: int, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
               wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S, backoff: Backoff | None = None,
               reschedule: int = DEFAULT_RESCHEDULES, client: Any = None) -> Concurrent:
    """At most ``limit`` holders at once, everywhere; a holder that dies frees its lease after ``lock_timeout`` s."""
    return Concurrent(name, limit, lock_timeout=lock_timeout, wait_timeout=wait_timeout, backoff=backoff,
                      reschedule=reschedule, client=client)


def window(name: str, count: int, seconds: float, *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
           backoff: Backoff | None = None, reschedule: int = DEFAULT_RESCHEDULES, client: Any = None) -> Window:
    """At most ``count`` operations in any sliding window of ``seconds``."""
    return Window(name, count, seconds, wait_timeout=wait_timeout, backoff=backoff, reschedule=reschedule,
                  client=client)


def bucket(name: str, count: int, seconds: float, *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
           backoff: Backoff | None = None, reschedule: int = DEFAULT_RESCHEDULES, client: Any = None) -> Bucket:
    """``count`` operations per interval of ``seconds``; each interval (aligned to the epoch) starts full."""
    return Bucket(name, count, seconds, wait_timeout=wait_timeout, backoff=backoff, reschedule=reschedule,
                  client=client)


def leaky(name: str, count: int, seconds: float, *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT_S,
          backoff: Backoff | None = None, reschedule: int = DEFAULT_RESCHEDULES, client: Any = None) -> Leaky:
    """A smooth rate: a bucket of ``count`` that drains in ``seconds`` (one every seconds/count after a burst)."""
    return Leaky(name, count, seconds, wait_timeout=wait_timeout, backoff=backoff, reschedule=reschedule,
                 client=client)
