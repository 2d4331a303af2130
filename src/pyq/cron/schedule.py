"""Schedules: one :class:`CronJob` per entry, read from a config ``cron:`` section or ``schedule.yml``.

The file format is sidekiq-cron's: a map ``name -> {cron, class, ...}`` or a
list of maps that carry ``name``. Every problem raises :class:`ConfigError`
naming the file (or config section), the schedule and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import payload
from ..errors import ConfigError
from .expr import last_fire, next_fire, to_croniter

#: Message fields a schedule may set besides the named ones (Sidekiq and unique-jobs options).
PASSTHROUGH = frozenset({"tags", "backtrace", "dead", "lock", "lock_args", "lock_ttl", "lock_timeout",
                         "on_conflict", "unique_across_queues", "unique_across_workers", "lock_prefix"})
#: Keys of a schedule entry that map to :class:`CronJob` fields (``class``/``klass`` both name the job).
KNOWN = frozenset({"name", "cron", "class", "klass", "queue", "args", "description", "status", "active_job",
                   "date_as_argument", "retry", "namespace", "source", "extra", "symbolize_args",
                   "queue_name_prefix", "queue_name_delimiter"})
_TRUE = re.compile(r"(true|t|yes|y|1)", re.IGNORECASE)


@dataclass(frozen=True)
class CronJob:
    """One recurring schedule, as sidekiq-cron stores it (``extra`` = other message fields)."""

    name: str
    cron: str
    klass: str
    queue: str = "default"
    args: tuple[Any, ...] | list[Any] = ()
    description: str = ""
    status: str = "enabled"
    active_job: bool = False
    date_as_argument: bool = False
    retry: Any = None
    namespace: str = "default"
    source: str = "schedule"
    extra: Mapping[str, Any] = field(default_factory=dict)
    _expr: str = field(default="", init=False, repr=False, compare=False)
    _tz: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("name", "klass", "queue", "namespace"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"cron job {self.name!r}: field {name!r} must be a non-empty string")
        if self.status not in ("enabled", "disabled"):
            raise ConfigError(f"cron job {self.name!r}: field 'status' must be enabled or disabled, "
                              f"got {self.status!r}")
        try:
            expr, tz = to_croniter(self.cron)
            payload.check_json_native(list(self.args))
            payload.check_json_native(dict(self.extra), "extra")
        except (ConfigError, TypeError) as exc:
            what = "cron" if isinstance(exc, ConfigError) else "args"
            raise ConfigError(f"cron job {self.name!r}: field {what!r}: {exc}") from None
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "extra", dict(self.extra))
        object.__setattr__(self, "_expr", expr)
        object.__setattr__(self, "_tz", tz)

    def next_time(self, after_s: float) -> float:
        """The first fire time strictly after ``after_s`` (epoch seconds, in the job's zone)."""
        return next_fire(self._expr, self._tz, after_s)

    def last_time(self, at_or_before_s: float) -> float:
        """The latest fire time at or before ``at_or_before_s``: the tick a poller at that moment owns."""
        return last_fire(self._expr, self._tz, at_or_before_s)

    def message(self) -> dict[str, Any]:
        """The Sidekiq job hash stored as the ``message`` field and pushed on each tick."""
        job: dict[str, Any] = {"queue": self.queue, "class": self.klass, "args": list(self.args)}
        if self.retry is not None:
            job["retry"] = self.retry
        return {**job, **self.extra}


def parse_schedule(data: Mapping[str, Any] | list[Any] | None, where: str) -> list[CronJob]:
    """Schedules from a ``cron:`` config section or ``schedule.yml`` content (map or list)."""
    if data is None:
        return []
    if isinstance(data, Mapping):
        entries = [(str(name), spec) for name, spec in data.items()]
    elif isinstance(data, list):
        entries = [(str(spec.get("name", "")) if isinstance(spec, Mapping) else "", spec) for spec in data]
    else:
        raise ConfigError(f"{where}: the schedule must be a map of name -> job or a list, "
                          f"got {type(data).__name__}")
    jobs: list[CronJob] = []
    for name, spec in entries:
        job = _entry(name, spec, where)
        if any(j.name == job.name and j.namespace == job.namespace for j in jobs):
            raise ConfigError(f"{where}: cron job {name!r} is defined twice")
        jobs.append(job)
    return jobs


def load_schedule_file(path: str) -> list[CronJob]:
    """Schedules from a sidekiq-cron ``schedule.yml`` (ERB is not evaluated; use ``${VAR}`` in config)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the schedule file: {exc.strerror}") from None
    if "<%" in text:
        raise ConfigError(f"{path}: ERB tags (<% %>) are not supported in schedule files")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_schedule(data, path)


def _entry(name: str, spec: Any, where: str) -> CronJob:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: cron job {name!r} must be a map of fields, got {type(spec).__name__}")
    if not name:
        raise ConfigError(f"{where}: a cron job in the list has no 'name'")
    unknown = sorted(str(k) for k in spec if k not in KNOWN and k not in PASSTHROUGH)
    if unknown:
        raise ConfigError(f"{where}: cron job {name!r}: unknown field(s) {', '.join(unknown)}")
    if "cron" not in spec or not (spec.get("class") or spec.get("klass")):
        field_name = "cron" if "cron" not in spec else "class"
        raise ConfigError(f"{where}: cron job {name!r}: field {field_name!r} is required")
    try:
        return CronJob(**_fields(name, spec))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _fields(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    extra = spec.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"cron job {name!r}: field 'extra' must be a map")
    fields: dict[str, Any] = {
        "name": name, "cron": spec["cron"], "klass": spec.get("class") or spec.get("klass"),
        "args": coerce_args(spec.get("args")), "active_job": truthy(spec.get("active_job")),
        "date_as_argument": truthy(spec.get("date_as_argument")),
        "extra": {**{k: v for k, v in spec.items() if k in PASSTHROUGH}, **extra},
    }
    for key in ("queue", "description", "status", "namespace", "source", "retry"):
        if spec.get(key) is not None:
            fields[key] = spec[key]
    return fields


def coerce_args(value: Any) -> list[Any]:
    """sidekiq-cron's argument rules: nil -> [], a map -> [map], JSON text -> parsed, a scalar -> [it]."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, Mapping):
        return [dict(value)]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def truthy(value: Any) -> bool:
    """Ruby sidekiq-cron's boolean reading: true, or text matching true/t/yes/y/1."""
    return value is True or (value is not None and _TRUE.fullmatch(str(value)) is not None)
