"""``job.set(...)`` and the ``perform_*`` calls: a defined job's item handed to a client.

The job model never imports the client: a push goes to the client given with
``set(client=...)``, else to the process's default client, which this module finds through
:func:`set_client_source` (``pyq/__init__.py`` installs ``pyq.client.default_client``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..results import JobHandle
from .options import PAYLOAD_OPTIONS, check_payload_options

if TYPE_CHECKING:
    from .definition import JobDefinition


class Pusher(Protocol):
    """What a job needs of a client (``pyq.Client`` and the test clients)."""

    def push(self, item: dict[str, Any]) -> str | None: ...

    def push_bulk(self, item: dict[str, Any], batch_size: int = ...) -> list[str]: ...


def _no_client() -> Pusher:
    raise RuntimeError("no default client is installed: import pyq, or pass set(client=...)")


_client_source: Callable[[], Pusher] = _no_client


def set_client_source(source: Callable[[], Pusher]) -> None:
    """Where pushes made without ``client=`` go: ``source()`` is called at each push."""
    global _client_source
    _client_source = source


class ConfiguredJob:
    """A job with per-call options, as returned by ``job.set(...)``."""

    def __init__(self, definition: JobDefinition, overrides: dict[str, Any]) -> None:
        self.definition = definition
        self.overrides = dict(overrides)
        self.client: Pusher | None = self.overrides.pop("client", None)
        check_payload_options({k: v for k, v in self.overrides.items() if k in PAYLOAD_OPTIONS and v is not None},
                              f"{definition.name}.set()")

    def set(self, **overrides: Any) -> ConfiguredJob:
        return ConfiguredJob(self.definition, {**self.overrides, "client": self.client, **overrides})

    def _client(self) -> Pusher:
        return self.client if self.client is not None else _client_source()

    def perform_async(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Push one call; its handle (the jid string), ``""`` when client middleware or a unique lock stopped it.

        Arguments that do not fit the job's signature raise TypeError here, not in a worker.
        """
        self.definition.check_call(list(args), kwargs)
        client = self._client()
        return JobHandle(client.push(self.definition.item(list(args), self.overrides)) or "", client)

    def perform_in(self, interval: float | timedelta, *args: Any, **kwargs: Any) -> JobHandle:
        self.definition.check_call(list(args), kwargs, "perform_in")
        return self.set(wait=interval).perform_async(*args)

    def perform_at(self, when: float | datetime, *args: Any, **kwargs: Any) -> JobHandle:
        self.definition.check_call(list(args), kwargs, "perform_at")
        return self.set(wait_until=when).perform_async(*args)

    def perform_bulk(self, args_list: Iterable[Iterable[Any]], batch_size: int = 1000) -> list[str]:
        """Push many calls in one round trip, ``batch_size`` jobs per script call; each call is checked first."""
        calls = [list(a) for a in args_list]
        for i, args in enumerate(calls):
            try:
                self.definition.check_call(args, {}, "perform_bulk")
            except TypeError as exc:
                raise TypeError(f"perform_bulk call {i}: {exc}") from None
        return self._client().push_bulk(self.definition.item(calls, self.overrides), batch_size=batch_size)
