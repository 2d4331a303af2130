"""One member of a sorted set, as the admin API hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import payload


@dataclass(frozen=True)
class Entry:
    """One member of a sorted set: its score, the raw bytes and the decoded job (None if unreadable)."""

    score: float
    raw: bytes
    job: dict[str, Any] | None

    @property
    def jid(self) -> str | None:
        return self.job.get("jid") if self.job else None

    @property
    def backtrace(self) -> list[str] | None:
        """The decoded ``error_backtrace`` (innermost call first), None when the job has none."""
        return payload.read_backtrace(self.job.get("error_backtrace")) if self.job else None


#: The job in a raw entry, or None when it is missing or not a job.
decode = payload.try_loads
