"""What can be set: every Config field's check, the key a file writes for it and its ``PYQ_*`` variable.

Config fields carry their units (``timeout_s``); files keep Sidekiq's keys (``timeout``) and the
environment keeps the documented variables (``PYQ_TIMEOUT``), both derived from the file key here.
"""

from __future__ import annotations

from . import config_checks as checks

#: Every settable Config field and its check.
SCHEMA: dict[str, checks.Check] = {
    "redis_url": checks.url,
    "namespace": checks.namespace,
    "cluster": checks.boolean,
    "concurrency": checks.POSITIVE_INT,
    "processes": checks.POSITIVE_INT,
    "queues": checks.queues,
    "strict": checks.optional(checks.boolean),
    "timeout_s": checks.number("a number of seconds >= 0", positive=False),
    "job_timeout_s": checks.optional(checks.SECONDS),
    "timeout_grace_s": checks.SECONDS,
    "max_retries": checks.COUNT,
    "dead_max_jobs": checks.COUNT,
    "dead_timeout_s": checks.COUNT,
    "batch_expiry_s": checks.POSITIVE_INT,
    "require": checks.strings,
    "cron": checks.mapping,
    "schedule_file": checks.optional(checks.text),
    "sidekiq_cron_version": checks.integer("1 or 2", 1, 2),
    "metrics_port": checks.optional(checks.integer("a port number (1-65535)", 1, 65535)),
    "metrics_host": checks.text,
    "execution_metrics": checks.boolean,
    "tracing": checks.tracing,
    "log_level": checks.choice("debug", "info", "warning", "error"),
    "log_format": checks.choice("text", "json"),
    "time_style": checks.time_style,
    "average_scheduled_poll_interval_s": checks.SECONDS,
    "poll_interval_average_s": checks.optional(checks.SECONDS),
    "heartbeat_interval_s": checks.SECONDS,
    "recovery_timeout_s": checks.SECONDS,
    "fetch_wait_s": checks.SECONDS,
    "prefetch": checks.optional(checks.COUNT),
    "tag": checks.text,
    "hostname": checks.text,
    "durable_enqueue": checks.integer("a number of replicas, 0 (off) or more", 0),
    "durable_enqueue_timeout_s": checks.SECONDS,
    "labels": checks.strings,
}
#: The file key of each field whose name differs from it (``metrics.port`` is nested under ``metrics``).
FILE_KEY = {
    "timeout_s": "timeout", "job_timeout_s": "job_timeout", "timeout_grace_s": "timeout_grace",
    "dead_timeout_s": "dead_timeout", "batch_expiry_s": "batch_expiry", "time_style": "time_format",
    "average_scheduled_poll_interval_s": "average_scheduled_poll_interval",
    "poll_interval_average_s": "poll_interval_average", "heartbeat_interval_s": "heartbeat_interval",
    "recovery_timeout_s": "recovery_timeout", "fetch_wait_s": "fetch_wait",
    "durable_enqueue_timeout_s": "durable_enqueue_timeout",
    "metrics_port": "metrics.port", "metrics_host": "metrics.host",
}
#: Fields a file cannot set at its top level (they sit under ``metrics:``) and fields without a variable.
_NESTED = frozenset({"metrics_port", "metrics_host"})
_NO_ENV = frozenset({"cron"})
#: Top-level file key -> field; Sidekiq's own spelling ``dead_timeout_in_seconds`` included.
TOP_LEVEL = {FILE_KEY.get(name, name): name for name in SCHEMA if name not in _NESTED}
TOP_LEVEL["dead_timeout_in_seconds"] = "dead_timeout_s"
#: Sidekiq-only keys accepted and ignored; the second set earns a warning because it asked for something.
IGNORED = frozenset({"verbose"})
#: Key -> what to do instead; ``{value}`` is the file's value. Sidekiq 6.0 removed both keys.
WARNED = {
    "logfile": "ignored: pyq logs to stderr, as Sidekiq 6+ does (Sidekiq 6.0 removed logfile); to write "
               "{value}, redirect it (pyq -C ... 2>>{value}) or let your process manager collect it",
    "pidfile": "ignored: pyq writes no pid file, as Sidekiq 6+ writes none (Sidekiq 6.0 removed pidfile); "
               "your process manager knows the pid",
}
#: Every key a settings mapping (the top level or an environment section) may hold.
SETTING_KEYS = frozenset(TOP_LEVEL) | {"metrics", "capsules"} | IGNORED | frozenset(WARNED)


def file_key(name: str) -> str:
    """The key a file writes for field ``name`` (dotted when nested)."""
    return FILE_KEY.get(name, name)


def env_var(name: str) -> str | None:
    """The ``PYQ_*`` variable that sets field ``name``, or None."""
    return None if name in _NO_ENV else "PYQ_" + file_key(name).replace(".", "_").upper()


def field_of(name: str) -> str | None:
    """The field an override or file spelling names (``timeout`` or ``timeout_s``), or None."""
    return name if name in SCHEMA else TOP_LEVEL.get(name)
