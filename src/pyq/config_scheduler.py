"""sidekiq-scheduler's ``:schedule:`` read into pyq's cron schedules (sidekiq-cron entries).

sidekiq-scheduler keeps its schedules in ``sidekiq.yml``, at the top level (``:schedule:``, gem 2-4) or
under ``:scheduler:`` (gem 5+), as ``name -> {cron | every | at | in | interval, class, queue, args, ...}``.
pyq reads the entries it can run the same way: a ``cron`` string, and an ``every`` period that a cron
expression repeats exactly (``30s``, ``5m``, ``2h``, ``1d``, ``1w``; it then fires on the clock's
multiples instead of counting from the process start). One-off (``at``, ``in``) and ``interval``
entries, and periods with no cron form, are errors that say what to write instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from .cron.schedule import parse_schedule
from .errors import ConfigError

log = logging.getLogger("pyq.config")

#: The scheduler's own options: read (``schedule``, ``enabled``) or ignored with a warning.
OPTIONS = frozenset({"schedule", "enabled", "dynamic", "dynamic_every", "listened_queues_only",
                     "rufus_scheduler_options"})
#: Entry fields with a sidekiq-cron equivalent, passed through under the same name.
_SAME = ("class", "queue", "description", "retry", "tags", "backtrace", "dead")
_PERIOD = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_WHOLE = {86_400: "0 0 * * *", 604_800: "0 0 * * 0"}


def read_options(options: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    """The cron entries of a ``scheduler:`` mapping (or the top-level options); None when it has none."""
    for key in sorted(set(options) - OPTIONS):
        raise ConfigError(f"{where}{key}: unknown sidekiq-scheduler option (pyq reads schedule and enabled)")
    for key in sorted(set(options) & (OPTIONS - {"schedule", "enabled"})):
        log.warning("%s%s: ignored: pyq stores its schedules in Redis and serves every queue it lists", where, key)
    if "schedule" not in options:
        return None
    entries = read_schedule(options["schedule"], f"{where}schedule")
    if options.get("enabled") is False:
        log.warning("%senabled: false: the schedule is loaded with every entry disabled", where)
        entries = {name: {**spec, "status": "disabled"} for name, spec in entries.items()}
    return entries


def read_schedule(schedule: Any, where: str) -> dict[str, Any]:
    """``name -> sidekiq-cron entry`` for a sidekiq-scheduler schedule, checked as pyq checks ``cron:``."""
    if schedule is None:
        return {}
    if not isinstance(schedule, Mapping):
        raise ConfigError(f"{where}: expected a mapping of name -> schedule, got {type(schedule).__name__}")
    entries = {str(name): _entry(spec, f"{where}.{name}") for name, spec in schedule.items()}
    parse_schedule(entries, where)
    return entries


def _entry(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with cron or every, class, queue, args")
    _refuse(spec, where)
    out: dict[str, Any] = {"cron": _when(spec, where)}
    out.update({key: spec[key] for key in _SAME if spec.get(key) is not None})
    unknown = sorted(set(spec) - {*_SAME, "cron", "every", "args", "enabled"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: not a sidekiq-scheduler field pyq reads "
                          f"(it reads cron, every, class, queue, args, description, enabled, retry)")
    args = spec.get("args")
    out["args"] = [] if args is None else list(args) if isinstance(args, list) else [args]
    if spec.get("enabled") is False:
        out["status"] = "disabled"
    return out


def _refuse(spec: Mapping[str, Any], where: str) -> None:
    if "at" in spec or "in" in spec:
        key = "at" if "at" in spec else "in"
        raise ConfigError(f"{where}.{key}: a one-off run is not a schedule in pyq; enqueue it once with "
                          f"`pyq enqueue CLASS --at TIME` (or --in SECONDS), or perform_at / perform_in")
    if "interval" in spec:
        raise ConfigError(f"{where}.interval: pyq has no interval schedules (next run counted from the last "
                          f"one's end); write `every:` with a period or a `cron:` expression")
    if "include_metadata" in spec:
        raise ConfigError(f"{where}.include_metadata: not supported; sidekiq-cron's `date_as_argument: true` "
                          f"in a `cron:` entry passes the fire time as the last argument")


def _when(spec: Mapping[str, Any], where: str) -> str:
    if ("cron" in spec) == ("every" in spec):
        raise ConfigError(f"{where}: expected one of cron or every")
    key = "cron" if "cron" in spec else "every"
    value = spec[key]
    if isinstance(value, list) and len(value) == 2 and value[1]:
        raise ConfigError(f"{where}.{key}: scheduler options ({', '.join(map(str, value[1]))}) are not supported")
    value = value[0] if isinstance(value, list) and value else value
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
    return value if key == "cron" else every_to_cron(value, f"{where}.every")


def every_to_cron(period: str, where: str) -> str:
    """The cron expression that repeats ``period`` (``"15m"`` -> ``"*/15 * * * *"``), or an error."""
    match = _PERIOD.fullmatch(period)
    seconds = int(match[1]) * _UNIT_S[match[2]] if match else 0
    for size, limit, template in ((1, 60, "*/{n} * * * * *"), (60, 60, "*/{n} * * * *"), (3600, 24, "0 */{n} * * *")):
        n, rest = divmod(seconds, size)
        if 0 < n < limit and not rest and limit % n == 0:
            return template.format(n=n)
    if seconds in _WHOLE:
        return _WHOLE[seconds]
    raise ConfigError(f"{where}: {period!r} has no cron form pyq can repeat exactly (a period that divides "
                      f"a minute, an hour or a day, or 1d / 1w); write a `cron:` expression instead")
