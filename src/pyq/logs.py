"""Logging setup: Sidekiq's line format by default, JSON lines with ``--log-format json``.

Records about a job carry it as attributes (``jid``, ``job_class``, ``queue``, ``retry_count``,
``elapsed_ms``): pyq's own job lines pass them as ``extra`` (:mod:`pyq.joblog`), and
:class:`JobFields`, a filter on pyq's handler, adds them to every other record written while a job
runs, so a job's own ``logging.getLogger(...)`` lines name their jid too. JSON lines carry them as
fields; text lines as Sidekiq's ``class=... jid=... elapsed=...`` context.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from . import context, payload

_LEVEL_NAMES = {"WARNING": "WARN"}
#: Record attribute -> JSON field of the job a record is about.
JOB_FIELDS = {"jid": "jid", "job_class": "class", "queue": "queue", "retry_count": "retry_count",
              "elapsed_ms": "elapsed_ms"}


def job_fields(job: dict[str, Any], queue: str, elapsed_s: float | None = None) -> dict[str, Any]:
    """The attributes of a record about ``job`` (the keys of :data:`JOB_FIELDS`), for ``extra``."""
    fields = {"jid": job.get("jid"), "job_class": payload.display_class(job), "queue": queue,
              "retry_count": job.get("retry_count")}
    if elapsed_s is not None:
        fields["elapsed_ms"] = round(elapsed_s * 1000, 3)
    return fields


class JobFields(logging.Filter):
    """Stamps a record written inside a running job with that job's fields (unless it has them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        if ctx is not None and getattr(record, "jid", None) is None:
            record.__dict__.update(job_fields(ctx.job, ctx.queue))
        return True


class SidekiqFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z pid=12 tid=ab3 class=Foo jid=b4a5 INFO: message`` (Sidekiq's pretty format)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        level = _LEVEL_NAMES.get(record.levelname, record.levelname)
        line = f"{stamp} pid={record.process} tid={_tid(record)}{_text_context(record)} {level}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_context(record: logging.LogRecord) -> str:
    """Sidekiq's job context: `` class=Foo jid=abc elapsed=0.012`` (seconds), or nothing."""
    parts = [f"{key}={value}" for key, value in (("class", getattr(record, "job_class", None)),
                                                  ("jid", getattr(record, "jid", None))) if value]
    elapsed_ms = getattr(record, "elapsed_ms", None)
    if isinstance(elapsed_ms, (int, float)):
        parts.append(f"elapsed={elapsed_ms / 1000:.3f}")
    return "".join(f" {p}" for p in parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, pid, tid, lvl, logger, msg, the job's fields, and exc (the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": record.created, "pid": record.process, "tid": _tid(record),
                                 "lvl": _LEVEL_NAMES.get(record.levelname, record.levelname), "logger": record.name,
                                 "msg": record.getMessage()}
        for attr, key in JOB_FIELDS.items():
            value = getattr(record, attr, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _tid(record: logging.LogRecord) -> str:
    return format((record.thread or threading.get_ident()) ^ os.getpid(), "x")[-6:]


def setup(level: str = "info", fmt: str = "text") -> None:
    """Route pyq's loggers (and the root logger) to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else SidekiqFormatter())
    handler.addFilter(JobFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_redis_maintenance()


def _not_maintenance(record: logging.LogRecord) -> bool:
    return "maintenance notification" not in record.getMessage().lower()


def quiet_redis_maintenance() -> None:
    """Drop redis-py's maintenance-notification chatter, even at debug level.

    redis-py 6.4+ tries ``CLIENT MAINT_NOTIFICATIONS`` (a Redis Enterprise/Cloud feature) on every new
    connection and logs a debug line when the server has no such command, as open source Redis does.
    That is one line per connection of every pyq thread, and says nothing about pyq.
    """
    logging.getLogger("redis.maint_notifications").setLevel(logging.WARNING)
    for name in ("redis.connection", "redis.asyncio.connection"):
        logging.getLogger(name).addFilter(_not_maintenance)  # the same function is added once only


class Outage:
    """One loop's view of a Redis outage: logged once when it starts and once, with its length, when it ends.

    Every background loop reports outages through this, so an operator sees one line per loop and
    outage in one format, instead of a line per retry.
    """

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.since_s: float | None = None  #: monotonic time of the first failure, None while healthy

    @property
    def failing(self) -> bool:
        return self.since_s is not None

    def failed(self, exc: BaseException, retry_every_s: float | None) -> None:
        """A call failed: log the first failure of an outage, stay quiet for the rest.

        ``retry_every_s`` is None for callers that retry when asked (a metrics scrape), not on a clock.
        """
        if self.since_s is None:
            self.since_s = time.monotonic()
            then = f"retrying every {retry_every_s:g}s" if retry_every_s is not None else "retrying when asked again"
            self.logger.error("%s: Redis unavailable (%s); %s", self.what, exc, then)

    def ok(self) -> None:
        """A call worked: log the outage's end once."""
        if self.since_s is not None:
            self.logger.warning("%s: Redis is back after %.1fs", self.what, time.monotonic() - self.since_s)
            self.since_s = None
