"""Priorities within a queue: which jobs leave the plain Sidekiq list, and in what order they run.

A job's priority is its payload's ``priority`` field, an integer; higher runs first, and the default,
0, is what every Ruby-pushed job has. A job at the default priority goes to ``queue:NAME`` exactly as
Sidekiq stores it, so a queue whose jobs all have the default priority stays a plain Sidekiq list. A
job with another priority goes to the queue's zset ``pyq:prio:NAME`` instead (``lua/includes/push_prio.lua``
scores it), and ``lua/fetch.lua`` takes, in one step, the jobs above the default first, then the list,
then the jobs below it. The Lua side reads the field with ``lua/includes/priority_of.lua``, the same rule
as :func:`priority_of` here.

ActiveJob counts the other way (``priority: 0`` runs before ``priority: 10`` in Solid Queue, Delayed Job
and Que), so an ActiveJob payload pushed through pyq with ``args[0]["priority"] = p`` gets ``priority = -p``
(:func:`stamp_activejob`).
"""

from __future__ import annotations

import math
from typing import Any

from . import payload

#: The priority of a job that names none: the plain Sidekiq list.
DEFAULT_PRIORITY = 0
#: Priorities are held within these bounds, so that every zset score is an exact integer.
PRIORITY_MIN, PRIORITY_MAX = -10_000, 10_000


def is_priority(value: Any) -> bool:
    """What ``priority=`` accepts: an int within PRIORITY_MIN..PRIORITY_MAX."""
    return isinstance(value, int) and not isinstance(value, bool) and PRIORITY_MIN <= value <= PRIORITY_MAX


def priority_of(job: dict[str, Any]) -> int:
    """A payload's priority: its ``priority`` number, rounded down and clamped; anything else is the default."""
    value = job.get("priority")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DEFAULT_PRIORITY
    return max(PRIORITY_MIN, min(PRIORITY_MAX, math.floor(value)))


def stamp_activejob(job: dict[str, Any]) -> None:
    """Give an ActiveJob payload without a ``priority`` of its own the mirror of ActiveJob's (lower runs first)."""
    if "priority" in job or not payload.is_activejob(job):
        return
    args = job.get("args")
    inner = args[0].get("priority") if isinstance(args, list) and args and isinstance(args[0], dict) else None
    if isinstance(inner, int) and not isinstance(inner, bool) and inner != 0:
        job["priority"] = max(PRIORITY_MIN, min(PRIORITY_MAX, -inner))
