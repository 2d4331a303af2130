"""Lock types, conflict strategies and the gem's constants, shared by the client and server sides."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import PyqError

log = logging.getLogger("pyq.unique")

#: The gem's default ``lock_prefix``.
PREFIX = "uniquejobs"
#: Seconds until a rescheduled duplicate runs (the gem's ``schedule_in`` default).
RESCHEDULE_IN_S = 5.0
#: Bounds in seconds of the wait for a runtime lock (the gem waits lock_timeout, at least 1, at most 5).
RUN_LOCK_MIN_WAIT_S = 1.0
RUN_LOCK_MAX_WAIT_S = 5.0
#: Every lock name the gem accepts -> the lock type it stands for.
LOCK_TYPES = {
    **dict.fromkeys(("until_executing", "while_enqueued"), "until_executing"),
    **dict.fromkeys(("until_executed", "until_completed", "until_performed", "until_processed",
                     "until_successfully_completed"), "until_executed"),
    "until_expired": "until_expired",
    **dict.fromkeys(("while_executing", "around_perform", "while_busy", "while_working",
                     "while_executing_reject"), "while_executing"),
    "until_and_while_executing": "until_and_while_executing",
}
STRATEGIES = ("log", "raise", "reject", "replace", "reschedule")


class LockConflict(PyqError):
    """Another job holds the lock of this digest (the ``raise`` conflict strategy)."""

    def __init__(self, digest: str, holder: str | None = None) -> None:
        super().__init__(f"unique job conflict: {digest} is locked" + (f" by jid {holder}" if holder else ""))
        self.digest, self.holder = digest, holder



def lock_type(job: dict[str, Any]) -> str:
    """The canonical lock type of a job; ValueError naming the job for an unknown one."""
    kind = LOCK_TYPES.get(job.get("lock"))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError(f"job {job.get('class')!r}: unknown lock {job.get('lock')!r}; "
                         f"expected one of {', '.join(sorted(LOCK_TYPES))}")
    return kind


def strategy(job: dict[str, Any], side: str) -> str | None:
    """The ``on_conflict`` strategy for ``"client"`` or ``"server"`` (a hash may set each side)."""
    value = job.get("on_conflict")
    if isinstance(value, dict):
        value = value.get(side)
    if side == "server" and value is None and job.get("lock") == "while_executing_reject":
        value = "reject"
    if value is not None and value not in STRATEGIES:
        raise ValueError(f"job {job.get('class')!r}: unknown on_conflict {value!r}; "
                         f"expected one of {', '.join(STRATEGIES)}")
    return value


def check_options(options: Mapping[str, Any], name: str) -> None:
    """Refuse an unknown ``lock`` or ``on_conflict``, or a ``lock_ttl`` that is not seconds, when a job is defined."""
    job = {**options, "class": name}
    if job.get("lock") is not None:
        lock_type(job)
    strategy(job, "client")
    strategy(job, "server")
    for key in ("lock_ttl", "lock_timeout"):
        value = job.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"job {name!r}: {key} must be a number of seconds >= 0, got {value!r}")
