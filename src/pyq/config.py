"""Settings from a YAML file, ``PYQ_*`` environment variables and command-line flags, as one frozen Config.

Precedence, lowest first: defaults, ``REDIS_URL``, the file's top level, the file's section named after the
environment (``production:``), ``PYQ_*`` variables, ``overrides`` (command-line flags; ``None`` = not given).
A Sidekiq ``sidekiq.yml`` is read unchanged: ``:key:`` and ``key:`` mean the same at every depth.
``${VAR}`` and ``${VAR:-default}`` in string values expand from the environment before types are checked.

``PYQ_QUEUES`` lists queues separated by spaces or ``;``, each ``name`` or ``name,weight``:
``PYQ_QUEUES="critical,3 default,2 low"``. ``PYQ_REQUIRE`` and ``PYQ_LABELS`` are comma-separated.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml

from .connection import redact
from .errors import ConfigError

log = logging.getLogger(__name__)

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_:.\-]+")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INT = re.compile(r"\s*[+-]?\d+\s*")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
#: Variables naming the environment, first one set wins (after the ``environment`` argument).
_ENV_VARS = ("PYQ_ENV", "RAILS_ENV", "APP_ENV")
#: Sidekiq-only keys accepted and ignored; the second set earns a warning because it asked for something.
_IGNORED = frozenset({"verbose"})
_WARNED = frozenset({"pidfile", "logfile"})
#: File spellings of a Config field.
_ALIASES = {"dead_timeout_in_seconds": "dead_timeout"}


@dataclass(frozen=True)
class QueueWeight:
    """One configured queue; weight 0 means it was listed without a weight."""

    name: str
    weight: int = 0


@dataclass(frozen=True)
class Config:
    """Everything a pyq process needs to run; built by :func:`load`, never mutated."""

    redis_url: str = "redis://localhost:6379/0"
    namespace: str = ""
    concurrency: int = 10
    processes: int = 1
    queues: tuple[QueueWeight, ...] = (QueueWeight("default", 0),)
    strict: bool | None = None  # accepted for Sidekiq files; order follows the weights
    timeout: float = 25.0  # shutdown grace, seconds
    max_retries: int = 25
    dead_max_jobs: int = 10_000
    dead_timeout: int = 15_552_000  # seconds (180 days)
    require: tuple[str, ...] = ()
    cron: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    schedule_file: str | None = None
    sidekiq_cron_version: int = 2
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    execution_metrics: bool = True
    log_level: str = "info"
    log_format: str = "text"
    time_format: str = "float"
    average_scheduled_poll_interval: float = 5.0
    poll_interval_average: float | None = None
    heartbeat_interval: float = 5.0
    recovery_timeout: float = 60.0  # seconds of heartbeat silence before a host's in-flight jobs are recovered
    fetch_wait: float = 1.0  # bound on an idle blocking wait: Ruby clients set no wake-up marker
    prefetch: int | None = None  # jobs buffered beyond concurrency; None = same as concurrency
    tag: str = ""
    labels: tuple[str, ...] = ()
    environment: str | None = None
    source: str | None = None  # the file the settings came from, for messages

    def queue_names(self) -> list[str]:
        """Distinct queue names in declared order."""
        return list(dict.fromkeys(q.name for q in self.queues))

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def redacted_url(self) -> str:
        """The Redis URL with its password hidden, for logs."""
        return redact(self.redis_url)


# --- value checks: each takes (value, where) and returns the typed value or raises ConfigError ------------

Check = Callable[[Any, str], Any]


def _fail(where: str, expected: str, value: Any) -> NoReturn:
    raise ConfigError(redact(f"{where}: expected {expected}, got {value!r}"))


def _int(expected: str, low: int, high: int | None = None) -> Check:
    def check(value: Any, where: str) -> int:
        number = int(value) if isinstance(value, str) and _INT.fullmatch(value) else value
        if isinstance(number, bool) or not isinstance(number, int) or number < low or (high and number > high):
            _fail(where, expected, value)
        return number
    return check


def _float(expected: str, positive: bool) -> Check:
    def check(value: Any, where: str) -> float:
        try:
            number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else -1.0
        except ValueError:
            number = -1.0
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            _fail(where, expected, value)
        return number
    return check


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    _fail(where, "true or false", value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        _fail(where, "a string", value)
    return value


def _namespace(value: Any, where: str) -> str:
    if not isinstance(value, str) or re.search(r"\s", value) or value.endswith(":"):
        _fail(where, "a key prefix without spaces or a trailing ':'", value)
    return value


def _choice(*options: str) -> Check:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str) or value.strip().lower() not in options:
            _fail(where, "one of " + ", ".join(options), value)
        return value.strip().lower()
    return check


def _optional(inner: Check) -> Check:
    def check(value: Any, where: str) -> Any:
        empty = value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none"))
        return None if empty else inner(value, where)
    return check


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
        _fail(where, "a list of strings", value)
    return tuple(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is not None and not isinstance(value, Mapping):
        _fail(where, "a mapping", value)
    return MappingProxyType(dict(value or {}))


def _url(value: Any, where: str) -> str:
    schemes = ("redis", "rediss", "unix", "redis+sentinel")
    text = value.strip() if isinstance(value, str) else ""
    url = urlsplit(text)
    if url.scheme.lower() not in schemes or not (url.netloc or url.path) or re.search(r"\s", text):
        _fail(where, "a URL starting with " + ", ".join(s + "://" for s in schemes), value)
    return text


def parse_queue(item: Any, where: str) -> QueueWeight:
    """One ``queues`` entry: ``name``, ``"name,weight"``, ``[name, weight]`` or ``{name: weight}``.

    ``where`` starts the error message (``"config/queue.yml: queues[2]"``, ``"-q"``).
    """
    if isinstance(item, QueueWeight):
        parts: list[Any] = [item.name, item.weight]
    elif isinstance(item, str):
        parts = [part.strip() for part in item.split(",")]
    elif isinstance(item, (list, tuple)):
        parts = list(item)
    elif isinstance(item, Mapping) and len(item) == 1:
        parts = list(next(iter(item.items())))
    else:
        parts = []
    weight = parts[1] if len(parts) == 2 else 0
    if isinstance(weight, str) and _INT.fullmatch(weight):
        weight = int(weight)
    if (not 1 <= len(parts) <= 2 or not isinstance(parts[0], str) or not _QUEUE_NAME.fullmatch(parts[0])
            or isinstance(weight, bool) or not isinstance(weight, int) or weight < 0):
        _fail(where, "a queue name (letters, digits, _ : . -) or name,weight with an integer weight >= 0", item)
    return QueueWeight(parts[0], weight)


def _queues(value: Any, where: str) -> tuple[QueueWeight, ...]:
    if isinstance(value, str):
        value = [item for item in re.split(r"[\s;]+", value) if item]
    if not isinstance(value, (list, tuple)) or not value:
        _fail(where, "a non-empty list of queues", value)
    queues = tuple(parse_queue(item, f"{where}[{i}]") for i, item in enumerate(value))
    twice = [q.name for i, q in enumerate(queues) if q.name in {p.name for p in queues[:i]}]
    if twice:
        raise ConfigError(f"{where}: queue {twice[0]!r} is listed twice")
    return queues


_POSITIVE_INT = _int("a positive integer", 1)
_COUNT = _int("an integer >= 0", 0)
_SECONDS = _float("a positive number of seconds", positive=True)

#: Every settable field and its check; PYQ_<NAME> exists for each except ``cron``.
_SCHEMA: dict[str, Check] = {
    "redis_url": _url, "namespace": _namespace, "concurrency": _POSITIVE_INT, "processes": _POSITIVE_INT,
    "queues": _queues, "strict": _optional(_bool), "timeout": _float("a number of seconds >= 0", positive=False),
    "max_retries": _COUNT, "dead_max_jobs": _COUNT, "dead_timeout": _COUNT, "require": _strings,
    "cron": _mapping, "schedule_file": _optional(_text), "sidekiq_cron_version": _int("1 or 2", 1, 2),
    "metrics_port": _optional(_int("a port number (1-65535)", 1, 65535)), "metrics_host": _text,
    "execution_metrics": _bool, "log_level": _choice("debug", "info", "warning", "error"),
    "log_format": _choice("text", "json"), "time_format": _choice("float", "ms"),
    "average_scheduled_poll_interval": _SECONDS, "poll_interval_average": _optional(_SECONDS),
    "heartbeat_interval": _SECONDS, "recovery_timeout": _SECONDS, "fetch_wait": _SECONDS,
    "prefetch": _optional(_COUNT), "tag": _text, "labels": _strings,
}
#: Keys a file may hold at its top level (or in an environment section).
_FILE_KEYS = (set(_SCHEMA) - {"metrics_port", "metrics_host"}) | {"metrics", "capsules"} | set(_ALIASES)
_KNOWN = _FILE_KEYS | _IGNORED | _WARNED

Layer = dict[str, tuple[Any, str]]  # field -> (raw value, where it came from)


# --- reading the file -------------------------------------------------------------------------------------

def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(redact(f"{path}: {line}invalid YAML: {getattr(exc, 'problem', None) or exc}")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return _normalise(data, path, "")


def _normalise(node: Any, source: str, path: str) -> Any:
    """Sidekiq's ``:key:`` spelling becomes ``key`` in every mapping; a key given both ways is an error."""
    if isinstance(node, list):
        return [_normalise(item, source, f"{path}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = key[1:] if isinstance(key, str) and key.startswith(":") else key
        where = f"{path}.{name}" if path else str(name)
        if not isinstance(name, str):
            raise ConfigError(f"{source}: {where}: expected a string key, got {name!r}")
        if name in out:
            raise ConfigError(f"{source}: {where}: given twice (as {name!r} and ':{name}')")
        out[name] = _normalise(value, source, where)
    return out


def _expand(node: Any, env: Mapping[str, str], where: str) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` replaced in every string below ``node``."""
    if isinstance(node, str):
        return _VAR.sub(lambda m: _lookup(m, env, where), node)
    if isinstance(node, list):
        return [_expand(item, env, f"{where}[{i}]") for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {key: _expand(value, env, f"{where}.{key}") for key, value in node.items()}
    return node


def _lookup(match: re.Match[str], env: Mapping[str, str], where: str) -> str:
    name, default = match.group(1), match.group(2)
    value = env.get(name)
    if value or (value is not None and default is None):
        return value
    if default is not None:
        return default
    raise ConfigError(f"{where}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")


def _split(data: dict[str, Any], environment: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The top-level settings and the section of ``environment``; other environments' sections are dropped."""
    base: dict[str, Any] = {}
    for key, value in data.items():
        if key in _KNOWN or not (value is None or isinstance(value, dict)):
            base[key] = value
    section = data.get(environment) if environment and environment not in _KNOWN else None
    return base, section if isinstance(section, dict) else {}


def _section(data: dict[str, Any], source: str, prefix: str, env: Mapping[str, str]) -> Layer:
    """One file section as a layer; ``prefix`` is ``""`` or ``"production."``."""
    out: Layer = {}
    for key, value in data.items():
        where = f"{source}: {prefix}{key}"
        value = _expand(value, env, where)
        if key == "metrics":
            out.update(_metrics(value, where))
        elif key == "capsules":
            raise ConfigError(f"{where}: capsules are not supported; run one pyq per queue group instead")
        elif key in _FILE_KEYS:
            name = _ALIASES.get(key, key)
            if name in out:
                raise ConfigError(f"{where}: {name} is already given in this section")
            out[name] = (value, where)
        elif key in _WARNED:
            log.warning("%s: ignored: pyq logs to stderr and writes no pid file", where)
        elif key not in _IGNORED:
            close = difflib.get_close_matches(key, sorted(_FILE_KEYS), n=1)
            raise ConfigError(f"{where}: unknown setting" + (f"; did you mean {close[0]!r}?" if close else ""))
    return out


def _metrics(value: Any, where: str) -> Layer:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(where, "a mapping with port and host", value)
    unknown = sorted(set(value) - {"port", "host"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting (metrics takes port and host)")
    return {f"metrics_{key}": (item, f"{where}.{key}") for key, item in value.items()}


# --- layers and load ------------------------------------------------------------------------------------

def _file_layer(path: str, environment: str | None, env: Mapping[str, str]) -> Layer:
    base, section = _split(_read(path), environment)
    layer = _section(base, path, "", env)
    layer.update(_section(section, path, f"{environment}.", env))
    return layer


def _env_layer(env: Mapping[str, str]) -> Layer:
    names = (name for name in _SCHEMA if name != "cron")
    return {name: (env[var], var) for name in names if (var := f"PYQ_{name.upper()}") in env}


def _override_layer(overrides: Mapping[str, Any]) -> Layer:
    unknown = sorted(set(overrides) - set(_SCHEMA))
    if unknown:
        raise ConfigError(f"overrides: {unknown[0]}: unknown setting")
    return {name: (value, f"overrides: {name}") for name, value in overrides.items() if value is not None}


def load(path: str | os.PathLike[str] | None = None, *, environment: str | None = None,
         overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The Config from ``path`` (optional), the environment ``env`` (default ``os.environ``) and ``overrides``.

    Every problem raises :class:`ConfigError` naming the file, the dotted key and what was expected.
    """
    env = os.environ if env is None else env
    environment = environment or next((env[var] for var in _ENV_VARS if env.get(var)), None)
    source = os.fspath(path) if path is not None else None
    layer: Layer = {"redis_url": (env["REDIS_URL"], "REDIS_URL")} if env.get("REDIS_URL") else {}
    if source is not None:
        layer.update(_file_layer(source, environment, env))
    layer.update(_env_layer(env))
    layer.update(_override_layer(overrides or {}))
    values = {name: _SCHEMA[name](value, where) for name, (value, where) in layer.items()}
    return Config(**values, environment=environment, source=source)
