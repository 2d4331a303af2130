"""When a job over a limit runs again, and when it stops being rescheduled (Sidekiq Enterprise's rules).

Inside a job, :class:`~pyq.limiter.OverLimit` becomes a reschedule: the job goes to the schedule set
``delay`` seconds from now and its payload's ``overrated`` count goes up by one. After ``reschedule``
reschedules (Enterprise's default: 20) it is an ordinary failure and takes the retry path.

Enterprise's default delay is 5 minutes times ``overrated`` plus up to 5 minutes. pyq knows more than
that: each limiter's script answers when it will have room (the oldest entry leaving a window, the next
interval of a bucket, the next drop of a leaky bucket, the first lease to lapse), so the default delay
is that wait plus up to 20 % of it at random, so that the jobs over the limit do not all come back in
the same millisecond. A concurrent limiter's lease usually comes back long before it lapses (its holder
finishes), so its delay grows linearly instead: ``overrated + 1`` seconds plus up to one more, never
past the lapse. ``backoff=`` replaces the rule: ``backoff(overrated, wait_s) -> seconds``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

#: ``backoff(overrated, wait_s) -> seconds`` until a job over the limit runs again.
Backoff = Callable[[int, float], float]
#: Reschedules before an over-limit job is a failure (Sidekiq Enterprise's ``reschedule`` default).
DEFAULT_RESCHEDULES = 20


def default_delay_s(kind: str, overrated: int, wait_s: float) -> float:
    """The delay before a job over a ``kind`` limiter runs again, the ``overrated``-th time (0 = first)."""
    if kind == "concurrent":
        return min(wait_s, overrated + 1.0) + random.uniform(0, 1.0)
    return wait_s + random.uniform(0, 0.2 * wait_s) + 0.01


def overrated_of(job: dict[str, Any]) -> int:
    """How often this job was rescheduled as over a limit (the payload's ``overrated``, Enterprise's field)."""
    value = job.get("overrated")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
