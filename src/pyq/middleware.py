"""Process-wide middleware chains and death handlers, and the code that runs a server chain.

Client middleware wraps every push made by a client built without its own
``middleware=[...]`` (the default client included): ``mw(job, call_next)``
returns the job to push (possibly changed, via ``call_next(job)``) or None to
stop the push. Server middleware wraps every job a worker runs:
``mw(ctx, call_next)`` with ``ctx`` a :class:`pyq.context.JobContext`;
not calling ``call_next`` skips the job (it counts as done).

For ``async def`` jobs a server middleware may itself be ``async def`` (it
awaits ``call_next()``), or a plain function: a plain one runs in a helper
thread and its ``call_next()`` blocks until the job has finished on the event
loop, so timing, locks and ``try/except`` around it see the real run.

Registries are read at call time, so registering after workers or clients
exist still takes effect.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .context import JobContext

#: Client middleware: ``mw(job, call_next) -> job | None``; returning None stops the push.
ClientMiddleware = Callable[[dict[str, Any], Callable[[dict[str, Any]], Any]], Any]
#: Server middleware: ``mw(ctx, call_next) -> result``; not calling call_next skips the job.
ServerMiddleware = Callable[[JobContext, Callable[[], Any]], Any]
#: Death handler: ``handler(job, exc)``, after a job went to the dead set or ran out of retries.
DeathHandler = Callable[[dict[str, Any], BaseException], Any]

#: Chains used by clients and workers that were not given their own.
client_middleware: list[ClientMiddleware] = []
server_middleware: list[ServerMiddleware] = []
#: Called for every job that dies (dead set) or exhausts its retries with ``dead: false``/``retry: false``.
death_handlers: list[DeathHandler] = []


def add_client_middleware(mw: ClientMiddleware) -> ClientMiddleware:
    """Register a client middleware for every default client; usable as a decorator."""
    client_middleware.append(mw)
    return mw


def add_server_middleware(mw: ServerMiddleware) -> ServerMiddleware:
    """Register a server middleware for every worker in this process; usable as a decorator."""
    server_middleware.append(mw)
    return mw


def on_death(handler: DeathHandler) -> DeathHandler:
    """Register a death handler (``handler(job, exc)``); usable as a decorator."""
    death_handlers.append(handler)
    return handler


def run_client_chain(chain: Sequence[ClientMiddleware], job: dict[str, Any]) -> dict[str, Any] | None:
    """Pass ``job`` through ``chain``; the last ``call_next`` returns the job as it then is."""

    def call(index: int, current: dict[str, Any]) -> dict[str, Any] | None:
        if index == len(chain):
            return current
        return chain[index](current, lambda j: call(index + 1, j))

    return call(0, job)


def sync_chain(chain: Sequence[ServerMiddleware], ctx: JobContext, perform: Callable[[], Any]) -> Callable[[], Any]:
    """``perform`` wrapped by ``chain`` (first = outermost), for a job that runs in this thread."""
    call = perform
    for mw in reversed(chain):
        call = _bind(mw, ctx, call)
    return call


def _bind(mw: ServerMiddleware, ctx: JobContext, call_next: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: mw(ctx, call_next)


def async_chain(chain: Sequence[ServerMiddleware], ctx: JobContext,
                perform: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``perform`` (a coroutine function) wrapped by ``chain``, mixing async and plain middleware."""
    call = perform
    for mw in reversed(chain):
        native = getattr(mw, "async_call", None)  # a middleware object may bring its own async form
        if native is not None:
            call = _bind_async(native, ctx, call)
        else:
            call = _bind_async(mw, ctx, call) if is_async(mw) else _bind_threaded(mw, ctx, call)
    return call


def is_async(fn: Any) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is one."""
    call = type(fn).__dict__.get("__call__") if not inspect.isroutine(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def _bind_async(mw: ServerMiddleware, ctx: JobContext,
                call_next: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await mw(ctx, call_next)

    return call


def _bind_threaded(mw: ServerMiddleware, ctx: JobContext,
                   call_next: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """A plain middleware around an async job: it runs in a thread, ``call_next`` waits for the loop.

    The thread runs in a copy of the task's context, so :func:`pyq.current` works there too.
    """

    async def call() -> Any:
        loop = asyncio.get_running_loop()

        def blocking_next() -> Any:
            return asyncio.run_coroutine_threadsafe(_awaited(call_next), loop).result()

        in_context = functools.partial(contextvars.copy_context().run, mw, ctx, blocking_next)
        return await loop.run_in_executor(None, in_context)

    return call


async def _awaited(call: Callable[[], Awaitable[Any]]) -> Any:
    return await call()


def job_callbacks(before: Callable[..., Any] | None, after: Callable[..., Any] | None,
                  around: Callable[..., Any] | None, is_async_job: bool) -> list[ServerMiddleware]:
    """A job's own ``before_perform(ctx)`` / ``after_perform(ctx)`` / ``around_perform(ctx, call_next)``
    as the innermost middleware; ``after_perform`` runs only when the job succeeded."""
    chain: list[ServerMiddleware] = []
    if before is not None or after is not None:
        chain.append(_async_callbacks(before, after) if is_async_job else _sync_callbacks(before, after))
    if around is not None:
        chain.append(around)
    return chain


def _sync_callbacks(before: Callable[..., Any] | None, after: Callable[..., Any] | None) -> ServerMiddleware:
    def callbacks(ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        _no_coroutine(before(ctx) if before else None, "before_perform")
        result = call_next()
        _no_coroutine(after(ctx) if after else None, "after_perform")
        return result

    return callbacks


def _async_callbacks(before: Callable[..., Any] | None, after: Callable[..., Any] | None) -> ServerMiddleware:
    async def callbacks(ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        await _maybe_await(before(ctx) if before else None)
        result = await call_next()
        await _maybe_await(after(ctx) if after else None)
        return result

    return callbacks


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _no_coroutine(value: Any, name: str) -> None:
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError(f"{name} is async but the job is not: make the job `async def` or the callback plain")
