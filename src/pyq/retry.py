"""What happens to a job that raised: retry later, die, or be discarded (Sidekiq's job_retry).

:func:`decide` answers with a :class:`Decision`; ``lua/fail.lua`` stores it
(in-flight removal, retry/dead insert, dead-set trim and failure stats in one
atomic step). The stored JSON is the job as fetched plus Sidekiq's error
fields, so Ruby's RetrySet/DeadSet and Web UI read it.

The order of the questions, first match wins:

1. ``discard_on`` lists the exception class -> discarded (no death handlers).
2. ``retry_on`` lists it -> its own ``attempts`` (total runs, ActiveJob's
   meaning) and ``wait``; when they run out, step 6.
3. A null (or missing) ``retry`` takes the job's declared ``retry`` option
   (Sidekiq's ``JobRetry#local``; the stored job carries it). ``retry: false``
   -> dropped; death handlers still run (Sidekiq).
4. ``retry_in(count, exc, job)`` hook -> seconds (jitter added), ``"kill"``
   (step 6 now) or ``"discard"``; None or anything else -> Sidekiq's backoff.
5. Retries left? ``retry_for`` set: only the time window since ``failed_at``
   counts (Sidekiq 8.1); else ``retry_count < allowed`` (an integer N -> N,
   anything else true -> ``max_retries``).
6. Exhausted: ``retries_exhausted(job, exc)`` (``"discard"`` drops the job
   silently) -> dead set unless ``dead: false`` -> death handlers.

Every other field (``retry_queue``, ``backtrace``, ``dead``, ``retry_for``) is
read from the payload only, as Sidekiq reads it. A job whose class is unknown has
no declared option: a null ``retry`` then means ``retry: true``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import payload
from .error_fields import with_error_fields

log = logging.getLogger("pyq.retry")

#: Sidekiq's default number of retries for ``retry: true``.
DEFAULT_MAX_RETRIES = 25
#: ActiveJob's ``retry_on`` defaults: 5 runs in all, 3 seconds apart.
DEFAULT_ATTEMPTS = 5
DEFAULT_WAIT_S = 3.0
#: ``wait="exponential"``: 3 s doubling per retry, plus up to 15 % jitter (ActiveJob's jitter).
EXPONENTIAL_BASE_S = 3.0
EXPONENTIAL_JITTER = 0.15
WAIT_ALGORITHMS = ("polynomial", "exponential")


@dataclass(frozen=True)
class Decision:
    """Where a failed job goes: ``"retry"`` (at ``score``), ``"dead"`` or ``"discard"``.

    ``death`` says whether death handlers run (dead set, or retries exhausted with
    ``dead: false`` / ``retry: false``); a ``discard_on`` or hook discard runs none.
    """

    target: str
    score: float
    job: dict[str, Any]
    death: bool = False


@dataclass(frozen=True)
class Policy:
    """A job's Python-only failure options, as ``JobDefinition.failure_policy`` builds them.

    The hooks are called with every argument: ``retry_in(count, exc, job)`` and
    ``retries_exhausted(job, exc)`` (the job model adapts hooks that take fewer).
    ``retry`` is the job's declared retry option: what a payload's null ``retry`` means.
    """

    retry: Any = True

    retry_on: Mapping[type[BaseException], Mapping[str, Any]] = field(default_factory=dict)
    discard_on: tuple[type[BaseException], ...] = ()
    retry_in: Callable[..., Any] | None = None
    retries_exhausted: Callable[..., Any] | None = None

    def retry_rule(self, exc: BaseException) -> Mapping[str, Any] | None:
        """The ``retry_on`` entry for ``exc``: its nearest class in the MRO wins."""
        for cls in type(exc).__mro__:
            if cls in self.retry_on:
                return self.retry_on[cls]
        return None


#: The policy of jobs defined without failure options, and of Ruby-pushed jobs.
NO_POLICY = Policy()


def is_seconds(value: Any) -> bool:
    """A finite, non-negative number of seconds (not a bool): what ``retry_for`` and waits accept."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


# --- delays ------------------------------------------------------------------------------------


def allowed_retries(job: dict[str, Any], max_retries: int) -> int:
    """Sidekiq's ``retry_attempts_from``: an integer N -> N, false -> 0, anything else -> max_retries."""
    option = job.get("retry", True)
    if option is False:
        return 0
    if isinstance(option, int) and not isinstance(option, bool):
        return max(0, option)
    return max_retries


def with_declared_retry(job: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """Sidekiq's ``JobRetry#local``: a null or missing ``retry`` is replaced by the job's declared option."""
    if job.get("retry") is not None:
        return job
    return {**job, "retry": policy.retry}


def jitter_s(count: int, rng: random.Random | None = None) -> int:
    """Sidekiq 6/7's jitter: randint(0..9) * (count + 1) seconds."""
    return (rng or random).randint(0, 9) * (count + 1)


def backoff_s(count: int, rng: random.Random | None = None) -> float:
    """Sidekiq's delay before attempt ``count + 2``: count**4 + 15 s plus jitter."""
    return count**4 + 15 + jitter_s(count, rng)


def rule_wait_s(wait: Any, count: int, exc: BaseException, rng: random.Random | None = None) -> float:
    """A ``retry_on`` wait: fixed seconds, ``"polynomial"`` (Sidekiq's), ``"exponential"`` or a callable."""
    if wait == "polynomial":
        return backoff_s(count, rng)
    if wait == "exponential":
        base = EXPONENTIAL_BASE_S * 2**count
        return base + (rng or random).random() * base * EXPONENTIAL_JITTER
    if callable(wait):
        return float(wait(count, exc))
    return float(wait)


# --- the decision ----------------------------------------------------------------------------------


@dataclass
class _Failure:
    job: dict[str, Any]
    exc: BaseException
    policy: Policy
    max_retries: int
    now_s: float
    rng: random.Random | None

    @property
    def count(self) -> int:
        return self.job["retry_count"]

    def retry_at(self, delay_s: float) -> Decision:
        return Decision("retry", self.now_s + delay_s, self.job)

    def discard(self, death: bool = False) -> Decision:
        self.job["discarded_at"] = int(self.now_s * 1000)
        return Decision("discard", self.now_s, self.job, death)


def decide(job: dict[str, Any], exc: BaseException, queue: str, *, policy: Policy = NO_POLICY,
           max_retries: int = DEFAULT_MAX_RETRIES, now_s: float | None = None,
           time_style: payload.TimeStyle = "float", rng: random.Random | None = None,
           kill: bool = False) -> Decision:
    """Where a job that raised ``exc`` after being fetched from ``queue`` goes (see the module doc).

    ``kill`` skips the retries (a job that cannot run, whatever it is retried with) and goes to step 6.
    """
    now_s = time.time() if now_s is None else now_s
    job = with_declared_retry(job, policy)
    f = _Failure(with_error_fields(job, exc, queue, now_s, time_style), exc, policy, max_retries, now_s, rng)
    if kill:
        return _exhausted(f)
    if policy.discard_on and isinstance(exc, policy.discard_on):
        return f.discard()
    rule = policy.retry_rule(exc)
    if rule is not None:
        attempts = rule.get("attempts", DEFAULT_ATTEMPTS)
        if attempts == "unlimited" or f.count + 1 < attempts:
            return f.retry_at(rule_wait_s(rule.get("wait", DEFAULT_WAIT_S), f.count, exc, rng))
        return _exhausted(f)
    if job.get("retry") is False:
        return f.discard(death=True)
    return _by_retry_option(f)


def _by_retry_option(f: _Failure) -> Decision:
    strategy = _retry_in(f)
    if strategy == "discard":
        return f.discard()
    if strategy == "kill" or _out_of_retries(f):
        return _exhausted(f)
    custom = is_seconds(strategy) and strategy > 0
    delay = strategy + jitter_s(f.count, f.rng) if custom else backoff_s(f.count, f.rng)
    return f.retry_at(delay)


def _retry_in(f: _Failure) -> Any:
    """The ``retry_in`` hook's answer; a hook that raises falls back to the default backoff (Sidekiq)."""
    if f.policy.retry_in is None:
        return None
    try:
        return f.policy.retry_in(f.count, f.exc, f.job)
    except Exception:
        log.exception("retry_in hook of %s raised; using the default backoff", f.job.get("class"))
        return None


def _out_of_retries(f: _Failure) -> bool:
    retry_for = f.job.get("retry_for")
    if is_seconds(retry_for):
        first = payload.to_epoch_s(f.job.get("failed_at"))
        return first is not None and first + retry_for < f.now_s
    return f.count >= allowed_retries(f.job, f.max_retries)


def _exhausted(f: _Failure) -> Decision:
    hook = f.policy.retries_exhausted
    if hook is not None:
        try:
            if hook(f.job, f.exc) == "discard":
                return f.discard()
        except Exception:
            log.exception("retries_exhausted hook of %s raised", f.job.get("class"))
    if f.job.get("dead", True) is False:
        return f.discard(death=True)
    return Decision("dead", f.now_s, f.job, death=True)
