"""Logging setup: Sidekiq's line format by default, JSON lines with ``--log-format json``."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

_LEVEL_NAMES = {"WARNING": "WARN"}


class SidekiqFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z pid=12 tid=ab3 INFO: message`` (Sidekiq's pretty format)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        level = _LEVEL_NAMES.get(record.levelname, record.levelname)
        line = f"{stamp} pid={record.process} tid={_tid(record)} {level}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, pid, tid, lvl, logger, msg (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": record.created, "pid": record.process, "tid": _tid(record),
                 "lvl": _LEVEL_NAMES.get(record.levelname, record.levelname), "logger": record.name,
                 "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _tid(record: logging.LogRecord) -> str:
    return format((record.thread or threading.get_ident()) ^ os.getpid(), "x")[-6:]


def setup(level: str = "info", fmt: str = "text") -> None:
    """Route pyq's loggers (and the root logger) to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else SidekiqFormatter())
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

    def failed(self, exc: BaseException, retry_every_s: float) -> None:
        """A call failed: log the first failure of an outage, stay quiet for the rest."""
        if self.since_s is None:
            self.since_s = time.monotonic()
            self.logger.error("%s: Redis unavailable (%s); retrying every %gs", self.what, exc, retry_every_s)

    def ok(self) -> None:
        """A call worked: log the outage's end once."""
        if self.since_s is not None:
            self.logger.warning("%s: Redis is back after %.1fs", self.what, time.monotonic() - self.since_s)
            self.since_s = None
