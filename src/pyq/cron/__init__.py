"""sidekiq-cron compatible recurring jobs: schedules, their Redis store, and the poller.

``expr`` reads cron strings, ``schedule`` builds :class:`CronJob` values from
config, ``store`` keeps them in the gem's Redis layout, ``poller`` pushes each
fire time exactly once across every pyq and Ruby poller sharing the Redis.
"""

from __future__ import annotations

from .expr import to_croniter
from .poller import CronPoller
from .schedule import CronJob, load_schedule_file, parse_schedule
from .store import CronStore

__all__ = ["CronJob", "CronPoller", "CronStore", "load_schedule_file", "parse_schedule", "to_croniter"]
