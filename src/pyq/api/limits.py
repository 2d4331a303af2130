"""Every limiter that has been used, with its limits and its use now (``pyq limits``, the dashboard).

Limiters register themselves in ``pyq:limiters`` (name -> kind and limits) each time they are checked,
so this reads what the workers use, with no registry to keep by hand. Use is read from each kind's
own key: live leases of a concurrent limiter, operations in a window's last ``seconds``, a bucket's
count in the current interval, a leaky bucket's level drained to now.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..connection import text
from ..keys import Keys

#: The letter of each kind's key (``pyq:lmtr-c-NAME`` ...), as the scripts build them.
KIND_LETTERS = {"concurrent": "c", "window": "w", "bucket": "b", "leaky": "l"}


@dataclass(frozen=True)
class LimiterUse:
    """One limiter: ``used`` of ``limit`` now (leases, or operations in the current window or bucket)."""

    name: str
    kind: str
    limit: int
    seconds: float | None  #: the window, interval or drain time; None for a concurrent limiter
    used: float
    over_limit: int  #: jobs it rescheduled since the counts began

    @property
    def label(self) -> str:
        per = f" per {self.seconds:g}s" if self.seconds is not None else " at once"
        return f"{self.used:g}/{self.limit}{per}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_limiters(redis: Any, keys: Keys, now_s: float | None = None) -> list[LimiterUse]:
    """Every registered limiter, by name, with its use at ``now_s`` (two round trips)."""
    now_s = time.time() if now_s is None else now_s
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.limiters)
    pipe.hgetall(keys.limiter_over)
    registered, over = pipe.execute()
    described = sorted((text(name), _descriptor(raw)) for name, raw in registered.items())
    described = [(name, d) for name, d in described if d.get("kind") in KIND_LETTERS]
    pipe = redis.pipeline(transaction=False)
    for name, d in described:
        _queue_read(pipe, keys.limiter(KIND_LETTERS[d["kind"]], name), d, now_s)
    reads = pipe.execute()
    counts = {text(k): int(v) for k, v in over.items()}
    return [LimiterUse(name, d["kind"], int(d.get("limit") or d.get("count") or 0), d.get("seconds"),
                       _used(d, value, now_s), counts.get(name, 0)) for (name, d), value in zip(described, reads,
                                                                                             strict=True)]


def over_limit_total(redis: Any, keys: Keys) -> int:
    """Jobs rescheduled as over a limit, by every limiter (``pyq:stat:over_limit``)."""
    return int(redis.get(keys.over_limit_count) or 0)


def _queue_read(pipe: Any, key: str, d: dict[str, Any], now_s: float) -> None:
    kind = d["kind"]
    if kind == "concurrent":
        pipe.zcount(key, f"({now_s!r}", "+inf")
    elif kind == "window":
        pipe.zcount(key, f"({now_s - float(d['seconds'])!r}", "+inf")
    elif kind == "bucket":
        pipe.hmget(key, "interval", "used")
    else:
        pipe.hmget(key, "level", "at")


def _used(d: dict[str, Any], value: Any, now_s: float) -> float:
    kind = d["kind"]
    if kind in ("concurrent", "window"):
        return float(value)
    first, second = (float(v) if v is not None else None for v in value)
    if kind == "bucket":
        current = math.floor(now_s / float(d["seconds"]))
        return second if first == current and second is not None else 0.0
    if first is None:
        return 0.0
    rate = float(d["count"]) / float(d["seconds"])
    return round(max(0.0, first - max(0.0, now_s - (second or now_s)) * rate), 2)


def _descriptor(raw: Any) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}

