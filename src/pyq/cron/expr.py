"""Cron strings as sidekiq-cron accepts them, turned into croniter expressions.

sidekiq-cron (through fugit) takes 5 fields, 6 fields with the *seconds first*,
an optional trailing time-zone name, and English phrases such as
``every day at 2am``. croniter wants seconds *last*, so 6-field strings are
rotated, phrases are translated to fields, and the zone is returned apart.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ..errors import ConfigError

#: Fixed words and what they mean as a 5- or 6-field croniter expression.
_WORDS = {
    "hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 0", "monthly": "0 0 1 * *",
    "yearly": "0 0 1 1 *", "annually": "0 0 1 1 *", "midnight": "0 0 * * *",
    "every second": "* * * * * *", "every minute": "* * * * *", "every hour": "0 * * * *",
    "every day": "0 0 * * *", "every week": "0 0 * * 0", "every month": "0 0 1 * *",
    "every year": "0 0 1 1 *", "every weekday": "0 0 * * 1-5", "every weekend": "0 0 * * 0,6",
}
#: Words that Ruby's fugit reads only with an ``@`` in front.
_BARE = frozenset({"hourly", "daily", "weekly", "monthly", "yearly", "annually", "midnight"})
_DAYS = {"sunday": "0", "monday": "1", "tuesday": "2", "wednesday": "3", "thursday": "4", "friday": "5",
         "saturday": "6", "weekday": "1-5", "weekend": "0,6", "day": "*"}
_EVERY_N = re.compile(r"every (\d+) (second|minute|hour|day)s?")
_EVERY_DAY_AT = re.compile(r"every (\w+?)s?(?: at (.+))?")
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?")


def to_croniter(expr: str) -> tuple[str, str | None]:
    """``(croniter expression, time-zone name or None)`` for one sidekiq-cron ``cron`` string.

    Raises :class:`ConfigError` naming the string when it is neither fields nor a known phrase.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"cron expression must be a non-empty string, got {expr!r}")
    text, tz = _split_zone(" ".join(expr.split()))
    fields = text.split(" ")
    if len(fields) in (5, 6) and all(_looks_like_field(f) for f in fields):
        result = " ".join(fields[1:] + fields[:1]) if len(fields) == 6 else text
    else:
        result = _phrase(text.lower())
    if not croniter.is_valid(result):
        raise ConfigError(f"cron expression {expr!r} is not valid (as croniter fields: {result!r})")
    return result, tz


def to_sidekiq_cron(expr: str) -> str:
    """The string stored in Redis: as written, except bare words fugit rejects (``daily`` -> ``@daily``)."""
    text = " ".join(expr.split())
    word, _, zone = text.partition(" ")
    if word.lower() in _BARE and (not zone or _is_zone(zone)):
        return f"@{word.lower()} {zone}".strip()
    return text


def _looks_like_field(field: str) -> bool:
    return re.fullmatch(r"[0-9*/,\-?LW#A-Za-z]+", field) is not None and field.lower() not in _WORDS


def _split_zone(text: str) -> tuple[str, str | None]:
    """A trailing zone name (``Europe/Berlin``, ``UTC``), with an optional ``in`` before it."""
    head, _, last = text.rpartition(" ")
    if not head or not _is_zone(last):
        return text, None
    return (head[:-3] if head.endswith(" in") else head), last


def _is_zone(name: str) -> bool:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", name) or name.lower() in _DAYS:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _phrase(text: str) -> str:
    """Translate one English schedule phrase into croniter fields."""
    text = text.removeprefix("@")
    if text in _WORDS:
        return _WORDS[text]
    if match := _EVERY_N.fullmatch(text):
        n, unit = int(match[1]), match[2]
        if n < 1:
            raise ConfigError(f"unknown cron phrase {text!r}: the interval must be at least 1")
        return {"second": f"* * * * * */{n}", "minute": f"*/{n} * * * *", "hour": f"0 */{n} * * *",
                "day": f"0 0 */{n} * *"}[unit]
    if (match := _EVERY_DAY_AT.fullmatch(text)) and match[1] in _DAYS:
        minute, hour = _clock(match[2] or "0:00", text)
        return f"{minute} {hour} * * {_DAYS[match[1]]}"
    raise ConfigError(f"unknown cron phrase {text!r}")


def _clock(value: str, text: str) -> tuple[int, int]:
    """``2am``, ``14:30``, ``9:15 pm``, ``noon``, ``midnight`` as (minute, hour)."""
    value = {"noon": "12:00", "midnight": "0:00"}.get(value.strip(), value.strip())
    match = _CLOCK.fullmatch(value)
    if not match:
        raise ConfigError(f"unknown cron phrase {text!r}: cannot read the time {value!r}")
    hour, minute = int(match[1]), int(match[2] or 0)
    if match[3]:
        if not 1 <= hour <= 12:
            raise ConfigError(f"unknown cron phrase {text!r}: {value!r} is not a 12-hour time")
        hour = hour % 12 + (12 if match[3] == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ConfigError(f"unknown cron phrase {text!r}: {value!r} is not a time of day")
    return minute, hour


# --- fire times ------------------------------------------------------------------


def _start(epoch_s: float, tz: str | None) -> datetime:
    return datetime.fromtimestamp(epoch_s, ZoneInfo(tz) if tz else timezone.utc)


def next_fire(expr: str, tz: str | None, after_s: float) -> float:
    """The first fire time strictly after ``after_s`` (epoch seconds)."""
    return float(croniter(expr, _start(after_s, tz)).get_next(float))


def last_fire(expr: str, tz: str | None, at_or_before_s: float) -> float:
    """The latest fire time at or before ``at_or_before_s`` (epoch seconds)."""
    prev = float(croniter(expr, _start(at_or_before_s, tz)).get_prev(float))
    following = next_fire(expr, tz, prev)
    return following if following <= at_or_before_s else prev
