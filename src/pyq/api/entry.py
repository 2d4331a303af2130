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

    @property
    def key(self) -> str:
        """``SCORE|JID``: names the entry in a link or form (Sidekiq's Web UI uses score and jid too)."""
        return f"{self.score!r}|{self.jid or ''}"


def parse_key(key: str) -> tuple[float, str]:
    """(score, jid) of an :attr:`Entry.key`; ValueError when it is not one."""
    score, sep, jid = key.partition("|")
    if not sep or not jid:
        raise ValueError(f"not an entry key: {key!r}")
    return float(score), jid


def glob_escape(needle: str) -> str:
    """``needle`` as a literal inside a Redis MATCH pattern (``*``, ``?``, ``[``, ``]``, ``\\`` escaped)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in needle)


#: The job in a raw entry, or None when it is missing or not a job.
decode = payload.try_loads
