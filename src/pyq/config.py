"""Settings from a YAML file, ``PYQ_*`` environment variables and command-line flags, as one frozen Config.

Precedence, lowest first: defaults, ``REDIS_URL``, the file's top level, the file's section named after the
environment (``production:``), ``PYQ_*`` variables, ``overrides`` (command-line flags; ``None`` = not given).
The environment is ``environment``, else ``PYQ_ENV``, then Sidekiq's ``APP_ENV``, ``RAILS_ENV``, ``RACK_ENV``,
else ``development``. A Sidekiq ``sidekiq.yml`` is read unchanged: its ERB reads of ``ENV`` are evaluated
(:mod:`pyq.config_erb`), ``:key:`` and ``key:`` mean the same at every depth, sections are found and checked
by :mod:`pyq.config_sections`, and ``${VAR}`` / ``${VAR:-default}`` expand before types are checked.

Field names carry units (``timeout_s``); files keep Sidekiq's keys (``timeout``) and the variables keep
theirs (``PYQ_TIMEOUT``): :mod:`pyq.config_schema` maps the three. ``PYQ_QUEUES`` lists queues separated by
spaces or ``;``, each ``name`` or ``name,weight``: ``PYQ_QUEUES="critical,3 default,2 low"``. ``PYQ_REQUIRE``
and ``PYQ_LABELS`` are comma-separated.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import payload
from .config_checks import QueueWeight, parse_queue
from .config_file import Layer, file_layer
from .config_schema import SCHEMA, env_var, field_of
from .connection import redact
from .errors import ConfigError

__all__ = ["Config", "QueueWeight", "load", "parse_queue"]

#: Variables naming the environment, first one set wins (after the ``environment`` argument); Sidekiq's order.
_ENV_VARS = ("PYQ_ENV", "APP_ENV", "RAILS_ENV", "RACK_ENV")
#: The environment when none is named, as in Sidekiq.
DEFAULT_ENVIRONMENT = "development"


@dataclass(frozen=True)
class Config:
    """Everything a pyq process needs to run; built by :func:`load`, never mutated. The one home of defaults."""

    redis_url: str = "redis://localhost:6379/0"
    namespace: str = ""
    cluster: bool = False  # Redis Cluster: a cluster client, and every key in one hash slot ({NS}: or {pyq}:)
    concurrency: int = 10
    processes: int = 1
    queues: tuple[QueueWeight, ...] = (QueueWeight("default", 0),)
    strict: bool | None = None  # accepted for Sidekiq files; order follows the weights
    timeout_s: float = 25.0  # shutdown grace
    job_timeout_s: float | None = None  # time limit of a job that sets none itself; None = no limit
    timeout_grace_s: float = 5.0  # past its limit, how long a job may take to stop before its process is replaced
    max_retries: int = 25
    dead_max_jobs: int = 10_000
    dead_timeout_s: int = 15_552_000  # 180 days
    batch_expiry_s: int = 2_592_000  # 30 days, as Sidekiq Pro keeps batches
    require: tuple[str, ...] = ()
    cron: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    schedule_file: str | None = None
    sidekiq_cron_version: int = 2
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    execution_metrics: bool = True
    tracing: str = "off"  # OpenTelemetry spans: off, or link / child / none (how a run relates to its push)
    log_level: str = "info"
    log_format: str = "text"
    time_style: payload.TimeStyle = "float"
    average_scheduled_poll_interval_s: float = 5.0
    poll_interval_average_s: float | None = None
    heartbeat_interval_s: float = 5.0  # Sidekiq 6: 5, 7/8: 10; anything well under the 60 s expiry works
    recovery_timeout_s: float = 60.0  # heartbeat silence before a host's in-flight jobs are recovered
    fetch_wait_s: float = 1.0  # bound on an idle blocking wait (the whole wait where Redis cannot track pushes)
    prefetch: int | None = None  # most jobs fetched to wait for a slot (only those due within 5 ms); None = concurrency
    tag: str = ""
    labels: tuple[str, ...] = ()
    hostname: str = ""  # the host part of worker identities; "" = this machine's name (or DYNO)
    durable_enqueue: int = 0  # replicas that must hold a push before it returns (WAIT); 0 = off
    durable_enqueue_timeout_s: float = 1.0  # longest WAIT for them
    environment: str = DEFAULT_ENVIRONMENT
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


def _env_layer(env: Mapping[str, str]) -> Layer:
    found = ((name, var) for name in SCHEMA if (var := env_var(name)) is not None)
    return {name: (env[var], var) for name, var in found if var in env}


def _override_layer(overrides: Mapping[str, Any]) -> Layer:
    """Overrides by field (``timeout_s``) or by the setting's file name (``timeout``, as the CLI gives it)."""
    layer: Layer = {}
    for key, value in overrides.items():
        name = field_of(key)
        if name is None:
            raise ConfigError(f"overrides: {key}: unknown setting")
        if value is not None:
            layer[name] = (value, f"overrides: {key}")
    return layer


def load(path: str | os.PathLike[str] | None = None, *, environment: str | None = None,
         overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The Config from ``path`` (optional), the environment ``env`` (default ``os.environ``) and ``overrides``.

    Every problem raises :class:`ConfigError` naming the file, the dotted key and what was expected;
    an ``environment`` given here must name a section of the file when the file has sections.
    """
    env = os.environ if env is None else env
    chosen = environment or next((env[var] for var in _ENV_VARS if env.get(var)), DEFAULT_ENVIRONMENT)
    source = os.fspath(path) if path is not None else None
    layer: Layer = {"redis_url": (env["REDIS_URL"], "REDIS_URL")} if env.get("REDIS_URL") else {}
    if source is not None:
        layer.update(file_layer(source, chosen, bool(environment), env))
    layer.update(_env_layer(env))
    layer.update(_override_layer(overrides or {}))
    values = {name: SCHEMA[name](value, where) for name, (value, where) in layer.items()}
    return Config(**values, environment=chosen, source=source)
