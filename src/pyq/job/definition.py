"""One job definition: its callable, wire name and options; the payload it pushes and the call it makes.

Both halves of a job's life read from here: a push builds its Sidekiq item with
:meth:`JobDefinition.item`, and a worker finds the hooks and the failure policy with
:meth:`JobDefinition.hook` / :meth:`JobDefinition.failure_policy`, then runs the body with
:meth:`JobDefinition.invoke`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import payload
from ..retry import NO_POLICY, Policy
from .enqueue import ConfiguredJob
from .options import call_hook, discard_classes, split_options

if TYPE_CHECKING:
    from ..results import JobHandle
    from .registry import Job

log = logging.getLogger("pyq.job")


class JobDefinition:
    """One job: its callable, wire name and options, plus the enqueue API."""

    def __init__(self, func: Callable[..., Any], name: str, options: dict[str, Any],
                 job_class: type[Job] | None = None) -> None:
        self.func = func
        self.name = name
        self.job_class = job_class
        self.is_async = inspect.iscoroutinefunction(func)
        self.options, self.policy = split_options(options, name)
        self.signature = inspect.signature(func)

    @property
    def wire_name(self) -> str:
        """The ``class`` of its payloads; ``Client.push({"class": definition})`` reads it."""
        return self.name

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

    def check_call(self, args: list[Any], kwargs: dict[str, Any], what: str = "perform_async") -> None:
        """Refuse, at the caller, a push whose arguments a worker would bury in the dead set."""
        if kwargs:
            raise TypeError(f"{self.name}.{what}: Sidekiq's job format has no keyword arguments (got "
                            f"{', '.join(map(repr, kwargs))}); pass them inside one dict argument instead, "
                            f"e.g. {what}(..., {{{', '.join(f'{k!r}: ...' for k in kwargs)}}}), "
                            "and give the job a parameter that takes that dict")
        try:
            self.check_args(args, {})
        except TypeError as exc:
            raise TypeError(f"{self.name}{self.parameters} cannot take args {args!r}: {exc}") from None

    @property
    def parameters(self) -> str:
        """The parameter list without annotations, as error messages show it: ``(report_id, options=None)``."""
        empty = inspect.Parameter.empty
        plain = [p.replace(annotation=empty) for p in self.signature.parameters.values()]
        return str(self.signature.replace(parameters=plain, return_annotation=empty))

    def __repr__(self) -> str:
        return f"<pyq job {self.name} queue={self.options['queue']}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the job body directly, in this process, without Redis."""
        return self.func(*args, **kwargs)

    # --- the payload a push builds ----------------------------------------------------
    def item(self, args: list[Any], overrides: dict[str, Any]) -> dict[str, Any]:
        """The Sidekiq item for ``Client.push``: options, then overrides; ``wait``/``wait_until`` -> ``at``."""
        item = {"class": self.name, "args": args, **self.options, **overrides}
        wait, wait_until = item.pop("wait", None), item.pop("wait_until", None)
        if wait is not None:
            item["at"] = time.time() + (wait.total_seconds() if isinstance(wait, timedelta) else float(wait))
        elif wait_until is not None:
            item["at"] = wait_until.timestamp() if isinstance(wait_until, datetime) else float(wait_until)
        return item

    # --- the call a worker makes --------------------------------------------------------
    def instance(self) -> Job | None:
        """A fresh ``pyq.Job`` instance for one run of a class job; None for a function job."""
        return self.job_class() if self.job_class is not None else None

    def invoke(self, instance: Job | None, args: list[Any], kwargs: dict[str, Any], *, job: dict[str, Any]) -> Any:
        """Run the body once for the payload ``job`` (a coroutine for an ``async def`` job)."""
        if instance is not None:
            instance.jid, instance.payload = job.get("jid"), job
            return instance.perform(*args, **kwargs)
        return self.func(*args, **kwargs)

    def hook(self, name: str, instance: Any = None) -> Any:
        """A hook: a class job's (bound) method, else the policy option of that name, else None."""
        cls = self.job_class
        if cls is not None and callable(getattr(cls, name, None)):
            try:
                return getattr(instance if instance is not None else cls(), name)
            except Exception:
                log.exception("cannot make a %s to look up its %s hook", cls.__name__, name)
        return self.policy.get(name)

    def failure_policy(self, instance: Any = None) -> Policy:
        """What :func:`pyq.retry.decide` needs of this job; its hooks may take fewer arguments."""
        if not self.policy and self.job_class is None and "retry" not in self.options:
            return NO_POLICY
        return Policy(retry=self.options.get("retry", True), retry_on=dict(self.policy.get("retry_on", {})),
                      discard_on=discard_classes(self.policy.get("discard_on", ())),
                      retry_in=_lenient(self.hook("retry_in", instance)),
                      retries_exhausted=_lenient(self.hook("retries_exhausted", instance)))

    # --- enqueue API ------------------------------------------------------------------------
    def set(self, **overrides: Any) -> ConfiguredJob:
        """A copy with per-call options: ``queue``, ``retry``, ``wait`` (s), ``wait_until``, ``client``, ..."""
        return ConfiguredJob(self, overrides)

    def perform_async(self, *args: Any, **kwargs: Any) -> JobHandle:
        return ConfiguredJob(self, {}).perform_async(*args, **kwargs)

    def perform_in(self, interval: float | timedelta, *args: Any, **kwargs: Any) -> JobHandle:
        return ConfiguredJob(self, {}).perform_in(interval, *args, **kwargs)

    def perform_at(self, when: float | datetime, *args: Any, **kwargs: Any) -> JobHandle:
        return ConfiguredJob(self, {}).perform_at(when, *args, **kwargs)

    def perform_bulk(self, args_list: Iterable[Iterable[Any]], batch_size: int = 1000) -> list[str]:
        return ConfiguredJob(self, {}).perform_bulk(args_list, batch_size)


def _lenient(hook: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """``hook`` called with as many of the decision's arguments as it accepts."""
    return None if hook is None else functools.partial(call_hook, hook)


def wire_name(target: Any) -> str:
    """The wire name of a job given as a definition, a ``pyq.Job`` class or a string."""
    if isinstance(target, str):
        return target
    name = getattr(target, "wire_name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"expected a pyq job or its name, got {target!r}")


def call_parts(job: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any]]:
    """(wire name, args, kwargs) of the call a payload asks for; ActiveJob envelopes are unwrapped."""
    if payload.is_activejob(job):
        return payload.unwrap_activejob(job)
    return job["class"], job["args"], {}
