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
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from . import config_checks as checks
from .config_checks import QueueWeight, parse_queue
from .connection import redact
from .errors import ConfigError

__all__ = ["Config", "QueueWeight", "load", "parse_queue"]

log = logging.getLogger(__name__)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
#: Variables naming the environment, first one set wins (after the ``environment`` argument).
_ENV_VARS = ("PYQ_ENV", "RAILS_ENV", "APP_ENV")
#: Sidekiq-only keys accepted and ignored; the second set earns a warning because it asked for something.
_IGNORED = frozenset({"verbose"})
_WARNED = frozenset({"pidfile", "logfile"})
#: File spellings of a Config field.
_ALIASES = {"dead_timeout_in_seconds": "dead_timeout"}


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



#: Every settable field and its check; PYQ_<NAME> exists for each except ``cron``.
_SCHEMA: dict[str, checks.Check] = {
    "redis_url": checks.url,
    "namespace": checks.namespace,
    "concurrency": checks.POSITIVE_INT,
    "processes": checks.POSITIVE_INT,
    "queues": checks.queues,
    "strict": checks.optional(checks.boolean),
    "timeout": checks.number("a number of seconds >= 0", positive=False),
    "max_retries": checks.COUNT,
    "dead_max_jobs": checks.COUNT,
    "dead_timeout": checks.COUNT,
    "require": checks.strings,
    "cron": checks.mapping,
    "schedule_file": checks.optional(checks.text),
    "sidekiq_cron_version": checks.integer("1 or 2", 1, 2),
    "metrics_port": checks.optional(checks.integer("a port number (1-65535)", 1, 65535)),
    "metrics_host": checks.text,
    "execution_metrics": checks.boolean,
    "log_level": checks.choice("debug", "info", "warning", "error"),
    "log_format": checks.choice("text", "json"),
    "time_format": checks.choice("float", "ms"),
    "average_scheduled_poll_interval": checks.SECONDS,
    "poll_interval_average": checks.optional(checks.SECONDS),
    "heartbeat_interval": checks.SECONDS,
    "recovery_timeout": checks.SECONDS,
    "fetch_wait": checks.SECONDS,
    "prefetch": checks.optional(checks.COUNT),
    "tag": checks.text,
    "labels": checks.strings,
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
        checks.fail(where, "a mapping with port and host", value)
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
