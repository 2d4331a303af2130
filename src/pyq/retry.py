"""What happens to a job that raised: retry later, die, or be discarded (Sidekiq's job_retry).

The decision is pure (:func:`decide`), the storage one Lua call
(``lua/fail.lua``: in-flight removal, retry/dead insert, dead-set trim and
failure stats in one atomic step). The stored JSON is the job as fetched plus
Sidekiq's error fields, so Ruby's RetrySet/DeadSet and Web UI read it.
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass
from typing import Any

from . import payload

#: Sidekiq's default number of retries for ``retry: true``.
DEFAULT_MAX_RETRIES = 25


@dataclass(frozen=True)
class Decision:
    """Where a failed job goes: ``"retry"`` (at ``score``), ``"dead"`` or ``"discard"``."""

    target: str
    score: float
    job: dict[str, Any]


def error_class_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Class`` otherwise."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def error_message(exc: BaseException) -> str:
    """``str(exc)`` cut to Sidekiq's 10,000 characters; survives a ``__str__`` that raises."""
    try:
        text = str(exc)
    except Exception as inner:  # a broken __str__ must not lose the job
        text = f"<unprintable {type(exc).__name__}: str() raised {type(inner).__name__}>"
    return text.encode("utf-8", "replace").decode("utf-8")[: payload.MAX_ERROR_MESSAGE]


def allowed_retries(job: dict[str, Any], max_retries: int) -> int:
    """Sidekiq's rule: ``retry: true`` (or null) -> max_retries, N -> N, false -> 0."""
    option = job.get("retry", True)
    if option is None or option is True:
        return max_retries
    if option is False:
        return 0
    try:
        return max(0, int(option))
    except (TypeError, ValueError):
        return max_retries


def backoff_s(count: int, rng: random.Random | None = None) -> float:
    """Sidekiq's delay before attempt ``count + 1``: count**4 + 15 s plus jitter (0..9) * (count + 1)."""
    rng = rng or random
    return count**4 + 15 + rng.randint(0, 9) * (count + 1)


def with_error_fields(job: dict[str, Any], exc: BaseException, queue: str, now_s: float,
                      time_style: payload.TimeStyle = "float") -> dict[str, Any]:
    """A copy of ``job`` with Sidekiq's failure fields set (retry_count, error_*, failed_at...)."""
    failed = dict(job)
    failed["queue"] = job.get("retry_queue") or queue
    failed["error_message"] = error_message(exc)
    failed["error_class"] = error_class_name(exc)
    if "retry_count" in job and isinstance(job["retry_count"], int):
        failed["retry_count"] = job["retry_count"] + 1
        failed["retried_at"] = payload.timestamp(now_s, time_style)
    else:
        failed["retry_count"] = 0
        failed["failed_at"] = payload.timestamp(now_s, time_style)
    lines = _backtrace_lines(job.get("backtrace"), exc)
    if lines:
        failed["error_backtrace"] = payload.encode_backtrace(lines)
    return failed


def _backtrace_lines(option: Any, exc: BaseException) -> list[str]:
    """Ruby-style lines (``file:line:in `name'``), innermost call first, as Sidekiq stores them."""
    if not option:
        return []
    frames = reversed(traceback.extract_tb(exc.__traceback__))
    lines = [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in frames]
    return lines if option is True else lines[: int(option)]


def decide(job: dict[str, Any], exc: BaseException, queue: str, *, max_retries: int = DEFAULT_MAX_RETRIES,
           now_s: float | None = None, time_style: payload.TimeStyle = "float",
           rng: random.Random | None = None) -> Decision:
    """Sidekiq's default policy for a job that raised ``exc`` after being fetched from ``queue``."""
    now_s = time.time() if now_s is None else now_s
    failed = with_error_fields(job, exc, queue, now_s, time_style)
    allowed = allowed_retries(job, max_retries)
    if job.get("retry") is False:
        return Decision("discard", now_s, failed)
    if failed["retry_count"] < allowed:
        return Decision("retry", now_s + backoff_s(failed["retry_count"], rng), failed)
    return Decision("dead" if job.get("dead", True) is not False else "discard", now_s, failed)
