"""What a page or an action gets: the Redis side (:class:`Settings`) and the request (:class:`Ctx`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import payload
from ..api import Api
from ..config import Config
from ..connection import connect
from ..keys import Keys
from ..scripts import DeadLimits
from .render import REFRESH_CHOICES_S, href


@dataclass(frozen=True)
class Settings:
    """One dashboard's Redis, namespace and the config values its pages and actions need."""

    redis: Any
    keys: Keys
    cron_version: int = 2
    time_style: payload.TimeStyle = "float"
    dead: DeadLimits = field(default_factory=DeadLimits.default)
    config: Config = field(default_factory=Config)

    @classmethod
    def of(cls, config: Config, redis_url: str | None = None) -> Settings:
        return cls(connect(redis_url or config.redis_url, cluster=config.cluster),
                   Keys(config.namespace, cluster=config.cluster), config.sidekiq_cron_version,
                   config.time_style, DeadLimits.of(config), config)

    @property
    def api(self) -> Api:
        return Api(self.redis, self.keys)


@dataclass
class Ctx:
    """One request: settings, CSRF token, mount point (``root``), path and query parameters."""

    settings: Settings
    token: str
    root: str
    path: str
    query: dict[str, str]
    here: str = "/"  #: this page inside the app, with its query but no message: where an action returns to
    api: Api = field(init=False)

    def __post_init__(self) -> None:
        self.api = self.settings.api

    @property
    def redis(self) -> Any:
        return self.settings.redis

    @property
    def keys(self) -> Keys:
        return self.settings.keys

    def url(self, path: str, **query: Any) -> str:
        return href(self.root, path, **query)

    def arg(self, name: str) -> str:
        return self.query.get(name, "")

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        """Query parameter ``name`` as an int clamped to [low, high]; ``default`` when absent or not a number."""
        try:
            return min(high, max(low, int(self.query[name])))
        except (KeyError, ValueError):
            return default

    @property
    def refresh_s(self) -> int:
        value = self.int_arg("refresh", 0, 0, max(REFRESH_CHOICES_S))
        return value if value in REFRESH_CHOICES_S else 0
