"""The background loops of a worker process besides fetching: heartbeat, poller, cron.

Built here so that the worker only starts and stops them; each loop takes a stop event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import cron
from .client import Client
from .config import Config
from .heartbeat import Heartbeat, WorkerState, process_info
from .keys import Keys
from .scheduler import FailureHook, Poller
from .scripts import DeadLimits

#: A named loop: ``run(stop_event)``.
Loop = tuple[str, Callable[[Any], None]]


def build(config: Config, redis: Any, keys: Keys, identity: str, state: WorkerState,
          started_at: float, on_failure: FailureHook | None = None) -> tuple[Heartbeat, list[Loop]]:
    """The heartbeat (the worker deregisters through it) and every loop to run in its own thread."""
    info = process_info(identity, concurrency=config.concurrency, started_at=started_at,
                        queues=[(q.name, q.weight) for q in config.queues], tag=config.tag, labels=config.labels)
    heartbeat = Heartbeat(redis, keys, identity, info, state, config.heartbeat_interval_s)
    poller = Poller(redis, keys, time_style=config.time_style,
                    average_scheduled_poll_interval_s=config.average_scheduled_poll_interval_s,
                    poll_interval_average_s=config.poll_interval_average_s,
                    recovery_timeout_s=config.recovery_timeout_s, dead=DeadLimits.of(config), on_failure=on_failure)
    loops: list[Loop] = [("heartbeat", heartbeat.run), ("poller", poller.run),
                         ("cron", cron_loop(config, redis, keys))]
    return heartbeat, loops


def cron_loop(config: Config, redis: Any, keys: Keys) -> Callable[[Any], None]:
    """The cron thread's loop: saves the configured schedules (sidekiq-cron's keys), then enqueues them.

    The schedules are parsed here, so a bad one fails while the worker is built; they are saved when
    the loop starts, so building a worker writes nothing to Redis.
    """
    jobs = cron.parse_schedule(dict(config.cron), f"{config.source or 'config'}: cron")
    if config.schedule_file:
        jobs += cron.load_schedule_file(config.schedule_file)
    version = config.sidekiq_cron_version
    client = Client.for_config(config, connection=redis)
    poller = cron.CronPoller(redis, keys, client, version=version)

    def run(stop: Any) -> None:
        if jobs:
            cron.CronStore(redis, keys, version=version).sync(jobs)
        poller.run(stop)

    return run
