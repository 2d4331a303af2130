"""The dashboard served by ``pyq web``: queues, busy, retries, scheduled, dead, cron, processes.

Server-rendered HTML from the standard library (no build step, no new
dependency). ``views`` reads and acts through :mod:`pyq.api`, ``render``
builds the markup, ``server`` handles HTTP, auth and CSRF.
"""

from __future__ import annotations

from ..config import Config
from ..connection import connect
from ..keys import Keys
from .server import Dashboard, make_server
from .views import Views

__all__ = ["Dashboard", "Views", "build", "make_server"]


def build(config: Config, redis_url: str | None, password: str | None) -> Dashboard:
    """A dashboard over the config's Redis; ``password`` None means no authentication."""
    redis = connect(redis_url or config.redis_url, cluster=config.cluster)
    keys = Keys(config.namespace, cluster=config.cluster)
    return Dashboard(Views(redis, keys, config.sidekiq_cron_version), password)
