"""Job definitions: ``@pyq.job`` functions, ``pyq.Job`` classes, their options and the registry.

A job has a *wire name*, the ``class`` string of its Sidekiq payload. It
defaults to the import path (``package.module.name``) so a worker can import
the job without any registry; ``name="Orders::ChargeJob"`` sets the exact
Sidekiq class name when Ruby pushes or runs the job.

Options split in two: Sidekiq options travel inside the payload (``queue``,
``retry``, ``backtrace``, ``tags``, ``retry_queue``, ``dead``, ``retry_for``,
and the uniqueness ``lock*`` fields), so Ruby tools see them; Python-only
policy (``retry_on``, ``discard_on``, hooks) stays in the definition.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from .errors import UnknownJob
from .retry import check_policy

#: Options copied into every payload when set (Sidekiq's ``sidekiq_options`` names).
PAYLOAD_OPTIONS = (
    "queue", "retry", "backtrace", "tags", "retry_queue", "dead", "retry_for",
    "lock", "lock_ttl", "lock_timeout", "on_conflict", "unique_across_queues", "unique_across_workers",
)
#: Options that shape behaviour in pyq only and never enter the payload.
POLICY_OPTIONS = (
    "retry_on", "discard_on", "retry_in", "retries_exhausted", "after_discard", "lock_args",
    "before_perform", "after_perform", "around_perform",
)

_registry: dict[str, JobDefinition] = {}


class JobDefinition:
    """One job: its callable, wire name and options, plus the enqueue API."""

    def __init__(self, func: Callable[..., Any], name: str, options: dict[str, Any],
                 job_class: type[Job] | None = None) -> None:
        unknown = set(options) - set(PAYLOAD_OPTIONS) - set(POLICY_OPTIONS)
        if unknown:
            raise TypeError(f"unknown job option(s) for {name}: {', '.join(sorted(unknown))}")
        self.func = func
        self.name = name
        self.job_class = job_class
        self.is_async = inspect.iscoroutinefunction(func)
        self.options = {k: v for k, v in options.items() if k in PAYLOAD_OPTIONS and v is not None}
        self.options.setdefault("queue", "default")
        self.policy = {k: v for k, v in options.items() if k in POLICY_OPTIONS and v is not None}
        check_policy(self.policy, name)
        self.signature = inspect.signature(func)

    @functools.cached_property
    def arity(self) -> tuple[int, int] | None:
        """(fewest, most) positional args when the signature is plain positional, else None."""
        params = list(self.signature.parameters.values())
        plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if not all(p.kind in plain for p in params):
            return None
        return sum(p.default is inspect.Parameter.empty for p in params), len(params)

    def check_args(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """Raise TypeError when the arguments do not fit the signature (a length check when it can)."""
        arity = self.arity
        if arity is not None and not kwargs and arity[0] <= len(args) <= arity[1]:
            return
        self.signature.bind(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<pyq job {self.name} queue={self.options['queue']}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the job body directly, in this process, without Redis."""
        return self.func(*args, **kwargs)

    # --- enqueue API (see client.py for what a push does) ---------------------
    def set(self, **overrides: Any) -> ConfiguredJob:
        """A copy with per-call options: ``queue``, ``retry``, ``wait`` (s), ``wait_until``, ..."""
        return ConfiguredJob(self, overrides)

    def perform_async(self, *args: Any) -> str:
        return ConfiguredJob(self, {}).perform_async(*args)

    def perform_in(self, interval: float | timedelta, *args: Any) -> str:
        return ConfiguredJob(self, {}).perform_in(interval, *args)

    def perform_at(self, when: float | datetime, *args: Any) -> str:
        return ConfiguredJob(self, {}).perform_at(when, *args)

    def perform_bulk(self, args_list: Iterable[Iterable[Any]], batch_size: int = 1000) -> list[str]:
        return ConfiguredJob(self, {}).perform_bulk(args_list, batch_size)


class ConfiguredJob:
    """A job with per-call options, as returned by ``job.set(...)``."""

    def __init__(self, definition: JobDefinition, overrides: dict[str, Any]) -> None:
        self.definition = definition
        self.overrides = dict(overrides)
        self.client = self.overrides.pop("client", None)

    def set(self, **overrides: Any) -> ConfiguredJob:
        return ConfiguredJob(self.definition, {**self.overrides, "client": self.client, **overrides})

    def _client(self) -> Any:
        if self.client is not None:
            return self.client
        from .client import default_client

        return default_client()

    def perform_async(self, *args: Any) -> str:
        return self._client().enqueue(self.definition, list(args), self.overrides)

    def perform_in(self, interval: float | timedelta, *args: Any) -> str:
        return self.set(wait=interval).perform_async(*args)

    def perform_at(self, when: float | datetime, *args: Any) -> str:
        return self.set(wait_until=when).perform_async(*args)

    def perform_bulk(self, args_list: Iterable[Iterable[Any]], batch_size: int = 1000) -> list[str]:
        return self._client().enqueue_bulk(self.definition, [list(a) for a in args_list], self.overrides,
                                           batch_size)


def _register(definition: JobDefinition) -> None:
    _registry[definition.name] = definition


def job(func: Callable[..., Any] | None = None, *, name: str | None = None, **options: Any) -> Any:
    """Decorate a function (sync or ``async def``) as a job: ``@pyq.job`` or ``@pyq.job(queue=...)``."""

    def wrap(f: Callable[..., Any]) -> JobDefinition:
        definition = JobDefinition(f, name or f"{f.__module__}.{f.__qualname__}", options)
        _register(definition)
        return definition

    return wrap(func) if func is not None else wrap


class _JobMeta(type):
    """Gives Job classes class-level enqueue methods (``Report.perform_async(1)``)."""

    def __getattr__(cls, attr: str) -> Any:
        definition = cls.__dict__.get("_definition")
        if definition is not None and attr in ("set", "perform_async", "perform_in", "perform_at",
                                               "perform_bulk"):
            return getattr(definition, attr)
        raise AttributeError(attr)


class Job(metaclass=_JobMeta):
    """Sidekiq-style class job: subclass, set options as class attributes, define ``perform``.

    ``class Report(pyq.Job, name="Reports::Build")`` sets the wire name.
    While running, ``self.jid`` and ``self.payload`` describe the job.
    """

    jid: str | None = None
    payload: dict[str, Any] | None = None
    _definition: JobDefinition

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.perform is Job.perform:
            return  # an abstract base for other jobs
        options = {k: getattr(cls, k) for k in (*PAYLOAD_OPTIONS, *POLICY_OPTIONS) if hasattr(cls, k)}
        for hook in ("retry_in", "retries_exhausted", "after_discard", "before_perform", "after_perform",
                     "around_perform", "lock_args"):
            if hook in options and callable(options[hook]):
                options[hook] = getattr(cls, hook)
        definition = JobDefinition(cls._run, name or f"{cls.__module__}.{cls.__qualname__}", options, cls)
        definition.signature = inspect.signature(cls.perform).replace(
            parameters=list(inspect.signature(cls.perform).parameters.values())[1:]
        )
        definition.is_async = inspect.iscoroutinefunction(cls.perform)
        cls._definition = definition
        _register(definition)

    @classmethod
    def _run(cls, *args: Any, **kwargs: Any) -> Any:
        return cls().perform(*args, **kwargs)

    def perform(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


def registered() -> dict[str, JobDefinition]:
    """A copy of the registry: wire name -> definition."""
    return dict(_registry)


def resolve(name: str) -> JobDefinition:
    """The job for a wire name: the registry first, then the name as an import path."""
    definition = _registry.get(name)
    if definition is not None:
        return definition
    module_name, _, attr = name.rpartition(".")
    if not module_name or "::" in name:
        raise UnknownJob(f"no job registered as {name!r} (use @pyq.job(name=...) or -r MODULE)")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownJob(f"cannot import job {name!r}: {exc}") from None
    definition = _registry.get(name) or _as_definition(target, name)
    _registry[name] = definition
    return definition


def _as_definition(target: Any, name: str) -> JobDefinition:
    if isinstance(target, JobDefinition):
        return target
    if isinstance(target, type) and issubclass(target, Job) and "_definition" in target.__dict__:
        return target._definition
    if callable(target):
        return JobDefinition(target, name, {})
    raise UnknownJob(f"{name!r} is a {type(target).__name__}, not a job")
