"""Schedules in Redis, stored field for field as the sidekiq-cron gem stores them.

Two layouts exist. sidekiq-cron 1.x (``version=1``): one ``cron_jobs`` set and
``cron_job:NAME`` hashes, booleans written ``true``/``false``. sidekiq-cron 2.x
(``version=2``, the default): ``cron_jobs:NS`` sets and ``cron_job:NS:NAME``
hashes with ``namespace``, ``source`` and ``retry`` fields and ``1``/``0``
booleans. Missing values are empty strings in both. pyq also writes ``source``
in the 1.x layout so that :meth:`CronStore.sync` can tell file schedules from
ones made at runtime; the 1.x gem ignores the field, and a hash without it
counts as ``dynamic`` (never removed by a sync).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

from .. import payload
from ..connection import text
from ..errors import ConfigError
from ..keys import Keys
from .expr import to_sidekiq_cron
from .schedule import CronJob, coerce_args, truthy

log = logging.getLogger(__name__)

#: sidekiq-cron's ``last_enqueue_time`` format (strftime), always written in UTC.
LAST_ENQUEUE_FORMAT = "%Y-%m-%d %H:%M:%S +0000"
#: Seconds between scans for ``cron_jobs:NS`` sets: namespaces made elsewhere show up within this time.
NAMESPACE_SCAN_EVERY_S = 60.0
#: Message fields that have their own CronJob attribute.
_OWN_FIELDS = ("class", "args", "queue", "retry")


def format_enqueue_time(epoch_s: float) -> str:
    """``YYYY-MM-DD HH:MM:SS +0000``, as the gem writes ``last_enqueue_time``."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime(LAST_ENQUEUE_FORMAT)


def parse_enqueue_time(text: str | bytes | None) -> float | None:
    """Epoch seconds from a ``last_enqueue_time`` value (the gem's format, or ISO 8601); None if unreadable."""
    if isinstance(text, bytes):
        text = text.decode()
    if not text:
        return None
    for parse in (lambda t: datetime.strptime(t, "%Y-%m-%d %H:%M:%S %z"), datetime.fromisoformat):
        try:
            moment = parse(text.strip().replace(" UTC", " +0000"))
        except ValueError:
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    return None


def iso_tick(epoch_s: float) -> str:
    """The ``:enqueued`` zset member for a fire time: ISO 8601 UTC with ``Z``, like Ruby's ``Time#iso8601``."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CronStore:
    """Reads and writes schedules in one Redis, in the 1.x or 2.x sidekiq-cron layout."""

    def __init__(self, redis: Any, keys: Keys, *, version: int = 2) -> None:
        if version not in (1, 2):
            raise ValueError(f"sidekiq-cron layout version must be 1 or 2, got {version!r}")
        self.redis = redis
        self.keys = keys
        self.version = version
        self._sets: set[str] = set()
        self._sets_expire_at = 0.0

    # --- keys --------------------------------------------------------------------------
    def ns(self, namespace: str | None) -> str | None:
        """The namespace as used in key names: None in the 1.x layout."""
        return None if self.version == 1 else (namespace or "default")

    def job_key(self, name: str, namespace: str | None = None) -> str:
        return self.keys.cron_job(name, self.ns(namespace))

    def enqueued_key(self, name: str, namespace: str | None = None) -> str:
        return self.keys.cron_enqueued(name, self.ns(namespace))

    def history_key(self, name: str, namespace: str | None = None) -> str:
        return self.keys.cron_jid_history(name, self.ns(namespace))

    # --- writing -------------------------------------------------------------------------
    def save(self, job: CronJob, now_s: float | None = None) -> None:
        """Store ``job``; a new job's ``:enqueued`` set is seeded with the current tick so it does not fire at once."""
        now_s = time.time() if now_s is None else now_s
        enqueued = self.enqueued_key(job.name, job.namespace)
        fresh = not self.redis.exists(enqueued)
        pipe = self.redis.pipeline(transaction=True)
        jobs_set = self.keys.cron_jobs(self.ns(job.namespace))
        self._sets.add(jobs_set)
        pipe.sadd(jobs_set, self.job_key(job.name, job.namespace))
        pipe.hset(self.job_key(job.name, job.namespace), mapping=self.encode(job))
        pipe.hsetnx(self.job_key(job.name, job.namespace), "last_enqueue_time", "")
        if fresh:
            pipe.zadd(enqueued, {iso_tick(job.last_time(now_s)): float(now_s)})
        pipe.execute()

    def sync(self, jobs: list[CronJob], now_s: float | None = None) -> None:
        """Save every job, then delete ``source: schedule`` jobs that are no longer listed."""
        for job in jobs:
            self.save(job, now_s)
        listed = {(j.namespace if self.version == 2 else "", j.name) for j in jobs}
        for job in self.all():
            if job.source == "schedule" and (job.namespace if self.version == 2 else "", job.name) not in listed:
                self.delete(job.name, namespace=job.namespace)

    def delete(self, name: str, *, namespace: str | None = None) -> None:
        """Remove a schedule with its enqueue marks and jid history (the gem's ``destroy``)."""
        key = self.job_key(name, namespace)
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self.keys.cron_jobs(self.ns(namespace)), key)
        pipe.delete(self.enqueued_key(name, namespace), self.history_key(name, namespace), key)
        pipe.execute()

    def enable(self, name: str, *, namespace: str | None = None) -> None:
        self._set_status(name, namespace, "enabled")

    def disable(self, name: str, *, namespace: str | None = None) -> None:
        self._set_status(name, namespace, "disabled")

    def _set_status(self, name: str, namespace: str | None, status: str) -> None:
        key = self.job_key(name, namespace)
        if not self.redis.exists(key):
            raise KeyError(f"no cron job named {name!r} (looked in {key})")
        self.redis.hset(key, "status", status)

    def record_enqueue(self, job: CronJob, jid: str | None, now_s: float) -> None:
        """After a push: ``last_enqueue_time``, jid history (10 newest), marks older than 24 h trimmed."""
        stamp = format_enqueue_time(now_s)
        shown = stamp if self.version == 1 else stamp.replace("+0000", "UTC")
        history = self.history_key(job.name, job.namespace)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.job_key(job.name, job.namespace), "last_enqueue_time", stamp)
        pipe.lpush(history, payload.dumps({"jid": jid, "enqueued": shown}))
        pipe.ltrim(history, 0, HISTORY_SIZE - 1)
        pipe.zremrangebyscore(self.enqueued_key(job.name, job.namespace), 0, f"({now_s - REMEMBER_S!r}")
        pipe.execute()

    # --- reading ----------------------------------------------------------------------------
    def all(self) -> list[CronJob]:
        """Every schedule this store can read; hashes pyq cannot parse are logged and left out."""
        return [job for job, _ in self.entries()]

    def entries(self) -> list[tuple[CronJob, float | None]]:
        """Every readable schedule with its ``last_enqueue_time`` (epoch seconds or None)."""
        hashes = self._all_hashes()
        out = []
        for key, fields in hashes:
            try:
                out.append((self.decode(fields, key), parse_enqueue_time(fields.get("last_enqueue_time"))))
            except ConfigError as exc:
                log.warning("cron: skipping %s: %s", key, exc)
        return out

    def get(self, name: str, *, namespace: str | None = None) -> CronJob | None:
        fields = _fields(self.redis.hgetall(self.job_key(name, namespace)))
        return self.decode(fields, self.job_key(name, namespace)) if fields else None

    def last_enqueue_time(self, name: str, *, namespace: str | None = None) -> float | None:
        return parse_enqueue_time(self.redis.hget(self.job_key(name, namespace), "last_enqueue_time"))

    def _all_hashes(self) -> list[tuple[str, dict[str, str]]]:
        members = sorted({text(m) for set_key in self._set_keys() for m in self.redis.smembers(set_key)})
        pipe = self.redis.pipeline(transaction=False)
        for key in members:
            pipe.hgetall(key)
        return [(key, _fields(raw)) for key, raw in zip(members, pipe.execute(), strict=True) if raw]

    def _set_keys(self) -> list[str]:
        """``cron_jobs`` (1.x), or every ``cron_jobs:NS`` set (2.x, the gem's ``:auto`` namespaces)."""
        if self.version == 1:
            return [self.keys.cron_jobs(None)]
        if time.monotonic() >= self._sets_expire_at:
            found = {text(k) for k in self.redis.scan_iter(match=self.keys.cron_jobs("*"), count=1000)}
            self._sets = found | {self.keys.cron_jobs("default")}
            self._sets_expire_at = time.monotonic() + NAMESPACE_SCAN_EVERY_S
        return sorted(self._sets)

    # --- hash codec ---------------------------------------------------------------------------
    def encode(self, job: CronJob) -> dict[str, str]:
        """The hash fields the gem of this layout version writes (without ``last_enqueue_time``)."""
        flag = (lambda b: "true" if b else "false") if self.version == 1 else (lambda b: "1" if b else "0")
        fields = {"name": job.name, "klass": job.klass, "cron": to_sidekiq_cron(job.cron),
                  "description": job.description,
                  "args": payload.dumps(list(job.args)), "date_as_argument": flag(job.date_as_argument),
                  "message": payload.dumps(job.message()), "status": job.status,
                  "active_job": flag(job.active_job), "queue_name_prefix": "", "queue_name_delimiter": "",
                  "symbolize_args": flag(False), "source": job.source}
        if self.version == 2:
            fields |= {"namespace": job.namespace, "retry": payload.ruby_to_s(job.retry)}
        return fields

    def decode(self, fields: dict[str, str], key: str = "") -> CronJob:
        """A CronJob from a hash written by pyq or by either gem version."""
        try:
            message = json.loads(fields.get("message") or "{}")
        except ValueError:
            raise ConfigError(f"cron job {fields.get('name')!r} in {key}: 'message' is not JSON") from None
        if not isinstance(message, dict):
            message = {}
        retry = _read_retry(fields.get("retry")) if fields.get("retry") else message.get("retry")
        return CronJob(
            name=fields.get("name", ""), cron=fields.get("cron", ""), klass=fields.get("klass") or message.get(
                "class", ""), queue=message.get("queue") or "default", args=coerce_args(fields.get("args")),
            description=fields.get("description", ""), status=fields.get("status") or "enabled",
            active_job=truthy(fields.get("active_job")), date_as_argument=truthy(fields.get("date_as_argument")),
            retry=retry, namespace=fields.get("namespace") or "default", source=fields.get("source") or "dynamic",
            extra={k: v for k, v in message.items() if k not in _OWN_FIELDS})


#: Jid history entries kept per schedule (the gem's ``cron_history_size``).
HISTORY_SIZE = 10
#: Seconds enqueue marks are kept (the gem's ``REMEMBER_THRESHOLD``, 24 h).
REMEMBER_S = 24 * 60 * 60


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def _read_retry(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text
