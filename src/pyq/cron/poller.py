"""The cron poller: pushes each schedule's job once per fire time, however many pollers run.

Every poll (any pyq process, any Ruby sidekiq-cron process):

1. reads every schedule with its ``last_enqueue_time``;
2. computes the schedule's latest fire time ``T`` at or before now;
3. skips it when disabled, when ``now - T`` exceeds the grace period, or when
   ``last_enqueue_time >= T``;
4. runs ``ZADD cron_job:...:enqueued T <T as ISO 8601>``. Only the caller that
   *added* the member pushes the job: the member is the same string in every
   process and in Ruby, so Redis elects exactly one pusher per tick;
5. the pusher writes ``last_enqueue_time``, the jid history and trims marks
   older than 24 h.

A crash between steps 4 and 5 loses that one tick, as in the gem.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from redis.exceptions import RedisError

from .. import payload
from ..keys import Keys
from ..logs import Outage
from ..polling import INITIAL_JITTER_S, INITIAL_WAIT_S, initial_wait_s, random_interval_s
from .schedule import CronJob
from .store import CronStore, iso_tick

log = logging.getLogger(__name__)



class CronPoller:
    """Enqueues due schedules through a :class:`pyq.Client`; ``run`` polls on sidekiq-cron's timing."""

    def __init__(self, redis: Any, keys: Keys, client: Any, *, version: int = 2, grace_s: float = 60.0,
                 poll_interval_s: float = 30.0, rng: random.Random | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.client = client
        self.store = CronStore(redis, keys, version=version)
        self.grace_s = grace_s
        self.poll_interval_s = poll_interval_s
        self.rng = rng or random.Random()

    def tick(self, now_s: float | None = None) -> list[tuple[str, str]]:
        """One poll at ``now_s``: returns ``(name, jid)`` for every job this call pushed."""
        now_s = time.time() if now_s is None else now_s
        pushed = []
        for job, last_enqueue_s in self.store.entries():
            fire_s = job.last_time(now_s)
            if not self._claim(job, fire_s, last_enqueue_s, now_s):
                continue
            try:
                pushed.append((job.name, self._push(job, fire_s, now_s)))
            except RedisError:
                raise
            except Exception:  # one bad schedule (e.g. middleware refusing it) must not stop the others
                log.exception("cron: could not enqueue %s for %s", job.name, iso_tick(fire_s))
        return pushed

    def enqueue_now(self, name: str, *, namespace: str | None = None) -> str:
        """Push a schedule's job at once, outside its schedule ("Enqueue Now" in the Web UI)."""
        job = self.store.get(name, namespace=namespace)
        if job is None:
            raise KeyError(f"no cron job named {name!r}")
        now_s = time.time()
        return self._push(job, now_s, now_s)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; an interval of 0 disables cron in this process, as in the gem."""
        if self.poll_interval_s <= 0:
            return
        outage = Outage(log, "cron")
        # Sidekiq's first wait, shortened for poll intervals below it (tests, and very frequent schedules)
        stop.wait(initial_wait_s(self.rng, min(INITIAL_WAIT_S, self.poll_interval_s),
                                 min(INITIAL_JITTER_S, self.poll_interval_s)))
        while not stop.is_set():
            try:
                self.tick()
                count = self.redis.scard(self.keys.processes)
                outage.ok()
            except RedisError as exc:
                outage.failed(exc, self.poll_interval_s)
                count = 1
            stop.wait(self.random_interval_s(count))

    def random_interval_s(self, process_count: int) -> float:
        """Sidekiq's poll spread around the cron poll interval (see :mod:`pyq.polling`).

        Many uncoordinated pollers then hit Redis at random moments instead of together;
        correctness never depends on it (the ZADD rule does that).
        """
        return random_interval_s(self.poll_interval_s, process_count, self.rng)

    # --- internals ---------------------------------------------------------------------
    def _claim(self, job: CronJob, fire_s: float, last_enqueue_s: float | None, now_s: float) -> bool:
        if job.status != "enabled" or now_s - fire_s > self.grace_s:
            return False
        if last_enqueue_s is not None and int(last_enqueue_s) >= int(fire_s):
            return False
        added = self.redis.zadd(self.store.enqueued_key(job.name, job.namespace), {iso_tick(fire_s): fire_s})
        return added == 1

    def _push(self, job: CronJob, fire_s: float, now_s: float) -> str:
        args = [*job.args, float(fire_s)] if job.date_as_argument else list(job.args)
        item = activejob_message(job, args, now_s) if job.active_job else {**job.message(), "args": args}
        jid = self.client.push(item) or ""
        self.store.record_enqueue(job, jid, now_s)
        log.debug("cron: enqueued %s as %s", job.name, jid)
        return jid


def activejob_message(job: CronJob, arguments: list[Any], now_s: float) -> dict[str, Any]:
    """The Sidekiq hash ActiveJob's Sidekiq adapter would push for ``job``."""
    stamp = datetime.fromtimestamp(now_s, timezone.utc)
    nanos = int(round((now_s - int(now_s)) * 1e9)) % 1_000_000_000
    envelope = {
        "job_class": job.klass, "job_id": str(uuid.uuid4()), "provider_job_id": None, "queue_name": job.queue,
        "priority": None, "arguments": arguments, "executions": 0, "exception_executions": {},
        "locale": "en", "timezone": "UTC", "enqueued_at": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos:09d}Z",
    }
    item = {"class": payload.ACTIVEJOB_WRAPPER, "wrapped": job.klass, "queue": job.queue, "args": [envelope]}
    if job.retry is not None:
        item["retry"] = job.retry
    return {**item, **job.extra}
