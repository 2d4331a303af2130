"""Test modes for code that enqueues pyq jobs: record them (fake) or run them at once (inline).

Both replace the process's default client (the one ``perform_async`` and
friends use, through :func:`pyq.client.override_default`) for the duration of a
``with`` block with one whose :meth:`~pyq.Client.store`, the call every push path
ends in, records jobs instead of writing them; no Redis is needed::

    with pyq.testing.fake() as jobs:
        signup("ann@example.com")
        assert jobs.args(send_welcome) == [["ann@example.com"]]
        jobs.drain()                     # run them (and whatever they enqueue)

    with pyq.testing.inline():
        signup("ann@example.com")        # send_welcome ran inside perform_async

Pushes go through the same validation and client middleware as a real push,
and arguments make a JSON round trip before a job runs, so a test sees what a
worker would. Server middleware and the retry policy do not run: an
exception raised by a job propagates to the caller of ``drain`` (or of
``perform_async`` in inline mode). Limiters (:mod:`pyq.limiter`) always have
room. Pytest users get the ``pyq_jobs`` (fake) and ``pyq_inline`` fixtures with ``pytest_plugins = ["pyq.testing"]``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import context, payload, scripts
from .client import Client, override_default
from .job import call_parts, resolve, wire_name
from .keys import Keys
from .scripts import Call

#: Jobs one ``drain()`` may run before it decides a job keeps re-enqueueing itself.
MAX_DRAIN = 10_000


class Jobs:
    """Jobs recorded by a fake or inline client, oldest first."""

    def __init__(self) -> None:
        self.all: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.all)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self.all))

    def for_job(self, target: Any) -> list[dict[str, Any]]:
        """Jobs of one job (a ``@pyq.job`` function, a ``pyq.Job`` class or a wire name)."""
        name = wire_name(target)
        return [job for job in self.all if payload.display_class(job) == name or job.get("class") == name]

    def queue(self, name: str) -> list[dict[str, Any]]:
        return [job for job in self.all if job.get("queue") == name]

    def args(self, target: Any) -> list[list[Any]]:
        """The argument lists of one job's recorded calls."""
        return [job["args"] for job in self.for_job(target)]

    def clear(self, target: Any = None) -> None:
        """Forget every job, or only those of ``target``."""
        drop = self.for_job(target) if target is not None else list(self.all)
        self.all = [job for job in self.all if not any(job is d for d in drop)]

    def drain(self, target: Any = None) -> int:
        """Run recorded jobs (all, or ``target``'s), including ones they enqueue, until none is left."""
        ran = 0
        while True:
            pending = self.for_job(target) if target is not None else list(self.all)
            if not pending:
                return ran
            job = pending[0]
            self.all = [j for j in self.all if j is not job]
            ran += 1
            if ran > MAX_DRAIN:
                raise RuntimeError(f"drain ran {MAX_DRAIN} jobs: does {payload.display_class(job)} enqueue itself?")
            perform(job)


def perform(job: dict[str, Any]) -> Any:
    """Run one job payload in this process, as a worker would call it (no middleware, no retries).

    The job is :func:`pyq.current` while it runs, as in a worker (with no Redis behind it).
    """
    job = payload.loads(payload.dumps(job))
    name, args, kwargs = call_parts(job)
    definition = resolve(name)
    instance = definition.instance()
    ctx = context.JobContext(job, b"", payload.queue_of(job), definition, args, kwargs, None, Keys(), None,
                             instance)
    token = context.enter(ctx)
    try:
        return _finish(definition.invoke(instance, args, kwargs, job=job))
    finally:
        context.leave(token)


def _finish(result: Any) -> Any:
    if not inspect.iscoroutine(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(result)
    result.close()
    raise RuntimeError("an async job cannot run inline inside a running event loop; use fake() and drain()")


class Recorder:
    """Fake mode's store: takes the script calls a push ends in (:meth:`Client.store`) and records their jobs.

    This is the one seam fake and inline mode replace; everything before it (validation, client
    middleware, unique-jobs lock fields, bulk templating) runs as in production. Uniqueness locks are
    not simulated: every lock is granted, so every push is recorded.
    """

    def __init__(self, jobs: Jobs, *, inline: bool = False) -> None:
        self.jobs = jobs
        self.inline = inline

    def __call__(self, calls: Sequence[Call]) -> list[Any]:
        return [self._take(call) for call in calls]

    def _take(self, call: Call) -> Any:
        argv = scripts.named_args(call)
        if call.script in ("enqueue", "batch_push"):
            for raw in argv["payloads"]:
                self._record(raw, argv["at_s"])
            return len(argv["payloads"])
        if call.script == "lock_push":
            if argv.get("payload"):
                self._record(argv["payload"], argv["at_s"])
            return [1, argv["jid"]]
        if call.script.startswith("batch_"):  # a batch's own bookkeeping: fake mode runs no callbacks
            return 1 if call.script == "batch_open" else 0
        if call.script == "kill":  # the unique reject strategy: nothing to record
            return 1
        raise RuntimeError(f"pyq.testing cannot fake lua/{call.script}.lua")

    def _record(self, raw: str, at_s: str) -> None:
        job = payload.loads(raw)
        if at_s:
            job["at"] = float(at_s)
        self.jobs.all.append(job)
        if self.inline:
            perform(job)


class _NoRedis:
    """Fake mode's connection: any use of it is a push path that bypassed :meth:`Client.store`."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"pyq.testing has no Redis (something called redis.{name} instead of Client.store)")


def fake_client(jobs: Jobs | None = None, *, inline: bool = False, time_style: payload.TimeStyle = "float",
                middleware: Any = None) -> Client:
    """A client whose pushes are recorded in ``jobs`` (and run at once when ``inline``) instead of stored."""
    recorder = Recorder(jobs if jobs is not None else Jobs(), inline=inline)
    return Client("fake://", connection=_NoRedis(), time_style=time_style, middleware=middleware, store=recorder)


@contextmanager
def _recording(*, inline: bool) -> Iterator[Jobs]:
    jobs = Jobs()
    with override_default(fake_client(jobs, inline=inline)):
        yield jobs


def fake() -> Any:
    """``with pyq.testing.fake() as jobs:`` -- record jobs instead of pushing them."""
    return _recording(inline=False)


def inline() -> Any:
    """``with pyq.testing.inline() as jobs:`` -- run each job inside ``perform_async``; ``jobs`` lists them."""
    return _recording(inline=True)


try:
    import pytest
except ImportError:  # pragma: no cover - the fixtures exist only where pytest does
    pass
else:

    @pytest.fixture
    def pyq_jobs() -> Iterator[Jobs]:
        """Fake mode for one test: the recorded jobs."""
        with fake() as jobs:
            yield jobs

    @pytest.fixture
    def pyq_inline() -> Iterator[Jobs]:
        """Inline mode for one test: jobs run as they are enqueued."""
        with inline() as jobs:
            yield jobs
