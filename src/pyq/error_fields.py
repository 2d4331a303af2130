"""Sidekiq's failure fields on a job: error_class, error_message, retry_count, failed_at, the backtrace.

Kept apart from the retry decision so that every path that stores a failed job (retry, dead set,
poison payloads) writes the same fields the same way, and Ruby's RetrySet/DeadSet read them.
"""

from __future__ import annotations

import traceback
from typing import Any

from . import payload
from .errors import Shutdown


def error_class_name(exc: BaseException) -> str:
    """``wire_name`` if the class sets one, ``ValueError`` for builtins, ``package.module.Class`` otherwise."""
    cls = type(exc)
    wire = cls.__dict__.get("wire_name")
    if isinstance(wire, str):
        return wire
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def error_message(exc: BaseException) -> str:
    """``str(exc)`` cut to Sidekiq's 10,000 characters; survives a ``__str__`` that raises."""
    try:
        text = str(exc)
    except Exception as inner:  # a broken __str__ must not lose the job
        text = f"<unprintable {type(exc).__name__}: str() raised {type(inner).__name__}>"
    return text.encode("utf-8", "replace").decode("utf-8")[: payload.MAX_ERROR_MESSAGE]


def caused_by_shutdown(exc: BaseException) -> bool:
    """True when :class:`Shutdown` is ``exc`` or anywhere in its ``__cause__``/``__context__`` chain."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, Shutdown):
            return True
        seen.add(id(current))
        todo += [current.__cause__, current.__context__]
    return False


def with_error_fields(job: dict[str, Any], exc: BaseException, queue: str, now_s: float,
                      time_style: payload.TimeStyle = "float") -> dict[str, Any]:
    """A copy of ``job`` with Sidekiq's failure fields set (retry_count, error_*, failed_at...)."""
    failed = dict(job)
    failed["queue"] = job.get("retry_queue") or queue
    failed["error_message"] = error_message(exc)
    failed["error_class"] = error_class_name(exc)
    count = job.get("retry_count")
    if isinstance(count, int) and not isinstance(count, bool):
        failed["retry_count"] = count + 1
        failed["retried_at"] = payload.timestamp(now_s, time_style)
    else:
        failed["retry_count"] = 0
        failed["failed_at"] = payload.timestamp(now_s, time_style)
    lines = backtrace_lines(job.get("backtrace"), exc)
    if lines:
        failed["error_backtrace"] = payload.encode_backtrace(lines)
    return failed


def backtrace_lines(option: Any, exc: BaseException) -> list[str]:
    """Ruby-style lines (``file:line:in `name'``), innermost call first, as Sidekiq stores them."""
    if option is not True and (isinstance(option, bool) or not isinstance(option, int) or option <= 0):
        return []
    frames = reversed(traceback.extract_tb(exc.__traceback__))
    lines = [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in frames]
    return lines if option is True else lines[:option]
