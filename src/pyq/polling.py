"""Sidekiq's randomised poll timing, shared by the scheduled-set poller and the cron poller.

Pollers in many processes do not coordinate. Each sleeps a random time whose mean is the
fleet-wide target, so together they poll about once per average while no two hit Redis in step.
sidekiq-cron's poller inherits these rules from Sidekiq's; only its average differs (a fixed
``cron_poll_interval`` instead of one scaled by the process count).
"""

from __future__ import annotations

import random

#: Seconds of the fixed part of the first wait: time for the fleet's heartbeats to register
#: (Sidekiq's ``INITIAL_WAIT``).
INITIAL_WAIT_S = 10.0
#: Seconds of the random part of the first wait (Sidekiq: up to 5).
INITIAL_JITTER_S = 5.0
#: From this many processes on, the spread covers the whole interval.
WIDE_SPREAD_FROM = 10


def random_interval_s(average_s: float, process_count: int, rng: random.Random) -> float:
    """A wait with mean ``average_s``.

    Below 10 processes it is uniform in [0.5, 1.5] × the average, so one process never goes silent for
    long; from 10 on it is uniform in [0, 2] × the average (Sidekiq 8.0.10+; older versions used
    [0, 1], which halved the mean), spreading a large fleet evenly over the interval.
    """
    if process_count < WIDE_SPREAD_FROM:
        return average_s * rng.random() + average_s / 2
    return 2 * average_s * rng.random()


def initial_wait_s(rng: random.Random, fixed_s: float = INITIAL_WAIT_S, jitter_s: float = INITIAL_JITTER_S) -> float:
    """Seconds before a poller's first cycle: ``fixed_s`` plus up to ``jitter_s`` at random."""
    return fixed_s + jitter_s * rng.random()
