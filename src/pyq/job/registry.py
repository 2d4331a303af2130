"""``@pyq.job`` functions and ``pyq.Job`` classes, and the registry that maps wire names to them.

A wire name defaults to the import path (``package.module.name``) so a worker can import the
job without any registry; ``name="Orders::ChargeJob"`` sets the exact Sidekiq class name when
Ruby pushes or runs the job.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from ..errors import UnknownJob
from .definition import JobDefinition
from .options import HOOKS, PAYLOAD_OPTIONS, POLICY_OPTIONS

_registry: dict[str, JobDefinition] = {}


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
    #: The ``class`` of its payloads (set on every concrete subclass); ``Client.push`` reads it.
    wire_name: ClassVar[str]
    _definition: JobDefinition

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._is_abstract():
            return  # an abstract base for other jobs
        options = {k: getattr(cls, k) for k in (*PAYLOAD_OPTIONS, *POLICY_OPTIONS) if hasattr(cls, k)}
        for hook in HOOKS:
            if hook in options and callable(options[hook]):
                options[hook] = getattr(cls, hook)
        definition = JobDefinition(cls._run, name or f"{cls.__module__}.{cls.__qualname__}", options, cls)
        definition.signature = cls._arguments_signature()
        definition.is_async = inspect.iscoroutinefunction(cls.perform)
        cls._definition, cls.wire_name = definition, definition.name
        _register(definition)

    @classmethod
    def _is_abstract(cls) -> bool:
        """True for a base class that defines no work of its own (it is not registered)."""
        return cls.perform is Job.perform

    @classmethod
    def _arguments_signature(cls) -> inspect.Signature:
        """The signature the payload's ``args`` must fit: ``perform``'s, without ``self``."""
        signature = inspect.signature(cls.perform)
        return signature.replace(parameters=list(signature.parameters.values())[1:])

    @classmethod
    def _run(cls, *args: Any, **kwargs: Any) -> Any:
        return cls().perform(*args, **kwargs)

    def perform(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


def registered() -> dict[str, JobDefinition]:
    """A copy of the registry: wire name -> definition."""
    return dict(_registry)


def unserved_queues(served: Iterable[str]) -> dict[str, list[str]]:
    """Queue -> wire names of the registered jobs declared on it (``queue`` or ``retry_queue``) but not served.

    A pool that does not serve a job's queue leaves its pushes waiting forever: the pool says so at start.
    """
    served = set(served)
    found: dict[str, list[str]] = {}
    for name, definition in sorted(_registry.items()):
        for queue in {definition.options.get("queue", "default"), definition.options.get("retry_queue")}:
            if queue is not None and queue not in served:
                found.setdefault(queue, []).append(name)
    return dict(sorted(found.items()))


def lock_args_method(name: str) -> Callable[..., Any] | None:
    """The ``lock_args`` policy of the job registered as ``name`` (unique jobs ask at each push)."""
    definition = _registry.get(name)
    return definition.policy.get("lock_args") if definition is not None else None


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

